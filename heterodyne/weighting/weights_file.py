"""Per-angle weights file shared by both fits (JSON, written atomically).

``noise`` holds each angle's noise model (:class:`heterodyne.noise_model.AngleNoise`: "independent"
with one sigma, or "speckle" with element sds that grow with c2 and frame-shared covariance);
residuals are (model - data) / sigma_ij with sigma_ij from :meth:`AngleWeights.pair_sigma`.
``sigma`` [c2 units] is each angle's constant sigma or, for a speckle model, its rms element sd.
``contrast`` and ``offset`` are initial values for the fits. ``method`` is "robust" (estimated) or
"uniform" (sigma = 1 at every angle). Per angle the file stores the noise model's fields as JSON
lists (null for NaN); a file without ``noise`` means one constant sigma per angle.
"""

import json
from dataclasses import asdict, dataclass

import numpy as np

from heterodyne.atomic import atomic_output
from heterodyne.errors import InputError
from heterodyne.noise_model import AngleNoise


@dataclass(frozen=True)
class AngleWeights:
    """Per-angle weights and starting scale of n_phi angles.

    phi (n_phi,) deg; sigma (n_phi,) c2 units (dimensionless): each angle's constant element sd,
    or its rms element sd under the speckle model; contrast, offset (n_phi,) c2 units: initial
    values of the fits; method: "robust" or "uniform"; noise: tuple of n_phi
    :class:`~heterodyne.noise_model.AngleNoise`, or None (every element of angle a has sd
    sigma[a]).
    """

    phi: np.ndarray
    sigma: np.ndarray
    contrast: np.ndarray
    offset: np.ndarray
    method: str
    noise: tuple | None = None

    def pair_sigma(self, rows, cols):
        """Element sd [c2 units] at the pairs (rows, cols) of every angle, (n_phi, n_pairs)."""
        if self.noise is None:
            return np.repeat(np.asarray(self.sigma, float)[:, None], np.size(rows), axis=1)
        return np.stack([noise.pair_sigma(rows, cols) for noise in self.noise])


#: two files hold the same angles when they differ by at most this many degrees (rounding only)
SAME_PHI_TOLERANCE_DEG = 1e-6


def same_angles(phi, reference):
    """True when ``phi`` lists the angles ``reference`` [deg], each within SAME_PHI_TOLERANCE_DEG."""
    phi, reference = np.asarray(phi, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    return phi.shape == reference.shape and bool(np.allclose(phi, reference, rtol=0, atol=SAME_PHI_TOLERANCE_DEG))


def check_weights_for(dataset, weights, path):
    """Raise InputError unless ``weights`` (read from ``path``) are for the angles of ``dataset``
    and every sigma is finite and > 0."""
    phi = np.asarray(dataset.phi, dtype=np.float64)
    if not same_angles(weights.phi, phi):
        raise InputError(
            f"{path}: weights are for phi = {np.asarray(weights.phi, float).tolist()} deg "
            f"but the dataset {dataset.source_path or ''} has phi = {phi.tolist()} deg; "
            "re-run `heterodyne weight` on this dataset"
        )
    sigma = np.asarray(weights.sigma, dtype=np.float64)
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise InputError(
            f"{path}: 'sigma' must be finite and > 0 at every angle, got {sigma.tolist()}; re-run `heterodyne weight`"
        )


def _json_value(value):
    if isinstance(value, np.ndarray):
        return [None if not np.isfinite(v) else float(v) for v in value]
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _noise_from_record(entry):
    arrays = {
        k: np.array([np.nan if v is None else v for v in entry[k]], float)
        for k in ("diagonal_level", "lag_level", "lag_spread", "lag_spread_model")
    }
    kappa = np.nan if entry["kappa"] is None else float(entry["kappa"])
    return AngleNoise(model=entry["model"], sigma=float(entry["sigma"]), kappa=kappa, **arrays)


def save_weights(path, weights, provenance):
    """Write weights and their provenance record as JSON."""
    record = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(weights).items() if k != "noise"}
    if weights.noise is not None:
        record["noise"] = [{k: _json_value(v) for k, v in asdict(noise).items()} for noise in weights.noise]
    record["provenance"] = provenance
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def load_weights(path):
    """Read a weights file written by :func:`save_weights`."""
    try:
        record = json.loads(open(path).read())
        return AngleWeights(
            phi=np.asarray(record["phi"], float),
            sigma=np.asarray(record["sigma"], float),
            contrast=np.asarray(record["contrast"], float),
            offset=np.asarray(record["offset"], float),
            method=record["method"],
            noise=(tuple(_noise_from_record(e) for e in record["noise"]) if "noise" in record else None),
        )
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise InputError(f"{path}: not a heterodyne weights file ({err}); re-run `heterodyne weight`") from err
