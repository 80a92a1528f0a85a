"""The normalised in-memory dataset every step after ingest uses, and its HDF5 file.

File layout (written atomically by :func:`save_dataset`):

* ``c2`` (n_phi, N, N) float64: symmetric two-time maps; the raw diagonal is replaced by the mean
  of its two off-diagonal neighbours (display only: fits never use the diagonal).
* ``valid`` (n_phi, N, N) bool: True where the source element was finite. The diagonal is
  excluded from fits separately (pairs i < j only). Where ``valid`` is False, ``c2`` holds the
  median of that map's valid off-diagonal elements (finite, so masks never meet NaN/inf).
* ``raw_diagonal`` (n_phi, N), optional: the maps' diagonal as the correlator wrote it (speckle
  contrast plus shot noise; NaN where not finite), which the noise model uses
  (:mod:`heterodyne.noise_model`). Absent in files of simulated in-memory data.
* ``t`` (N,) s: absolute time of each c2 row since the start of acquisition (+ time_origin).
* ``phi`` (n_phi,) deg.
* attributes: ``dt`` (s), ``q`` (1/A), ``time_origin`` (s), ``source_path``, ``source_sha256``,
  ``selection`` (JSON), ``provenance`` (JSON, see :mod:`heterodyne.provenance`).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from heterodyne.atomic import atomic_hdf5
from heterodyne.errors import InputError
from heterodyne.provenance import write_provenance_attrs


@dataclass(frozen=True)
class Dataset:
    """The selected maps of one q bin (n_phi angles, N frames); c2 is dimensionless (c2 units).

    c2 (n_phi, N, N) float64: symmetric two-time maps; valid (n_phi, N, N) bool: finite in the
    source; t (N,) s: absolute time of each row; phi (n_phi,) deg; dt s: frame interval; q 1/A;
    time_origin s: added to t; source_path, source_sha256: the raw file and its SHA-256;
    selection: what ingest chose and why (JSON-able); raw_diagonal (n_phi, N) or None: the
    diagonal as the correlator wrote it. The file layout in the module docstring has the details.
    """

    c2: np.ndarray
    valid: np.ndarray
    t: np.ndarray
    phi: np.ndarray
    dt: float
    q: float
    time_origin: float = 0.0
    source_path: str = ""
    source_sha256: str = ""
    selection: dict = field(default_factory=dict)
    raw_diagonal: np.ndarray | None = None

    def __post_init__(self):
        n_phi, n = len(self.phi), len(self.t)
        if self.c2.shape != (n_phi, n, n) or self.valid.shape != self.c2.shape:
            raise ValueError(
                f"c2 {self.c2.shape} and valid {self.valid.shape} must be (n_phi, N, N) = ({n_phi}, {n}, {n})"
            )


def usable(c2, valid):
    """Bool mask of the usable elements of maps ``c2`` (..., N, N): i < j, ``valid`` True, c2 finite
    (each unordered pair once, never the diagonal)."""
    n = c2.shape[-1]
    return np.asarray(valid, bool) & np.isfinite(c2) & np.triu(np.ones((n, n), bool), k=1)


def count_usable(c2, valid):
    """Number of :func:`usable` elements of maps ``c2`` (n_phi, N, N), over all angles."""
    return int(np.count_nonzero(usable(c2, valid)))


def save_dataset(path, dataset, provenance):
    """Write ``dataset`` to ``path`` atomically, with the provenance record as an attribute."""
    with atomic_hdf5(path) as f:
        f.create_dataset("c2", data=np.asarray(dataset.c2, dtype=np.float64))
        f.create_dataset("valid", data=np.asarray(dataset.valid, dtype=bool))
        f.create_dataset("t", data=np.asarray(dataset.t, dtype=np.float64))
        f.create_dataset("phi", data=np.asarray(dataset.phi, dtype=np.float64))
        if dataset.raw_diagonal is not None:
            f.create_dataset("raw_diagonal", data=np.asarray(dataset.raw_diagonal, dtype=np.float64))
        f.attrs.update(
            dt=float(dataset.dt),
            q=float(dataset.q),
            time_origin=float(dataset.time_origin),
            source_path=dataset.source_path,
            source_sha256=dataset.source_sha256,
            selection=json.dumps(dataset.selection, sort_keys=True),
        )
        write_provenance_attrs(f, provenance)


def load_dataset(path):
    """Read a file written by :func:`save_dataset`."""
    try:
        with h5py.File(path, "r") as f:
            return Dataset(
                c2=f["c2"][()],
                valid=f["valid"][()],
                t=f["t"][()],
                phi=f["phi"][()],
                dt=float(f.attrs["dt"]),
                q=float(f.attrs["q"]),
                time_origin=float(f.attrs["time_origin"]),
                source_path=str(f.attrs["source_path"]),
                source_sha256=str(f.attrs["source_sha256"]),
                selection=json.loads(f.attrs["selection"]),
                raw_diagonal=f["raw_diagonal"][()] if "raw_diagonal" in f else None,
            )
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: not a heterodyne dataset file ({err}); re-run `heterodyne ingest`") from err


def load_dataset_grid(path):
    """(q [1/A], t (N,) [s]) of a file written by :func:`save_dataset`, without reading the maps."""
    if not Path(path).is_file():
        raise InputError(
            f"{path}: dataset.h5 not found (it gives the bin's q); run `heterodyne ingest` for this q bin first"
        )
    try:
        with h5py.File(path, "r") as f:
            return float(f.attrs["q"]), np.asarray(f["t"][()], dtype=np.float64)
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: not a heterodyne dataset file ({err}); re-run `heterodyne ingest`") from err
