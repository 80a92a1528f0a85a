"""HDF5 files of CMC draws (written atomically, with provenance): the one module that writes and
reads the shard files and combined.h5 (per q bin and of the joint multi-q posterior).

Shard file ``cmc/shard_k.h5``: group ``draws`` with one float64 dataset (chains, draws) per sampled
quantity (physical units: D0_sample, ..., contrast_0, offset_0, ...); sampler statistics per draw
(chains, draws): ``diverging`` bool, ``num_steps`` int (leapfrog steps), ``energy`` float64
(Hamiltonian energy, dimensionless); ``step_size`` (chains,) float64 (adapted step size, in the
sampler's unconstrained coordinates); ``unconstrained`` (chains, draws, D) float64, the same draws
in the shared sampling coordinates y (:mod:`heterodyne.cmc.coordinates`; column D - 1 is the log
noise scale when it is sampled), and group ``coordinates`` with the arrays of the map y -> theta
(one dataset per :class:`~heterodyne.cmc.coordinates.Coordinates` field), group ``prior`` with the
arrays of the prior sampled under (one dataset per :class:`~heterodyne.cmc.model.Prior` field,
physical units); attributes ``shard``, ``num_shards``, ``seed``,
``n_points``, ``wall_time_s``, ``chain_method``, ``max_tree_depth``, ``names`` (JSON list,
sampling order) and ``provenance``.

Combined file ``cmc/combined.h5``: group ``draws`` with one dataset (n_draws,) per quantity
(chain c's draws at [c * n_draws / n_chains, (c + 1) * n_draws / n_chains)), attributes
``num_shards``, ``n_chains``, ``names`` and ``provenance``; it holds some physics parameter.
The shard files lie beside combined.h5 (:func:`shard_paths_beside`).
"""

import json
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from heterodyne.atomic import atomic_hdf5
from heterodyne.cmc.coordinates import Coordinates
from heterodyne.core.parameters import PARAMETER_NAMES
from heterodyne.errors import InputError
from heterodyne.provenance import write_provenance_attrs


class ShardDraws(NamedTuple):
    """Draws of one shard, arrays (chains, draws) unless noted: ``draws`` {name: physical
    values}, ``unconstrained`` (chains, draws, D) in the shared coordinates y, ``diverging``,
    ``num_steps`` (leapfrog steps per draw), ``energy`` (Hamiltonian), ``step_size`` (chains,);
    ``wall_time_s`` covers the geometry, compilation, warm-up and sampling."""

    draws: dict
    unconstrained: np.ndarray
    diverging: np.ndarray
    num_steps: np.ndarray
    energy: np.ndarray
    step_size: np.ndarray
    max_tree_depth: int
    target_accept: float
    wall_time_s: float
    chain_method: str


#: the sampler arrays of a shard file (datasets, :class:`ShardDraws` fields) and their dtypes
SHARD_ARRAYS = {
    "unconstrained": np.float64,
    "diverging": bool,
    "num_steps": np.int64,
    "energy": np.float64,
    "step_size": np.float64,
}
#: the sampler settings and wall time of a shard file (attributes, :class:`ShardDraws` fields) and their types
SHARD_RUN_ATTRS = {"max_tree_depth": int, "target_accept": float, "wall_time_s": float, "chain_method": str}


class ShardFile(NamedTuple):
    """A shard file as read back: shard ``shard`` of ``num_shards`` (``seed``, ``n_points`` data
    points), the sampler's ``run`` (:class:`ShardDraws`), the ``coordinates`` and ``prior``
    ({Prior field: array (M,)}) it was sampled in and under, and the ``path`` it was read from."""

    shard: int
    num_shards: int
    seed: int
    n_points: int
    run: ShardDraws
    coordinates: Coordinates
    prior: dict
    path: str


def save_shard(path, shard, num_shards, seed, n_points, result, coordinates, prior, provenance):
    """Write one shard's :class:`ShardDraws` ``result``, the
    :class:`~heterodyne.cmc.coordinates.Coordinates` it was sampled in and the
    :class:`~heterodyne.cmc.model.Prior` it was sampled under."""
    with atomic_hdf5(path) as f:
        group = f.create_group("draws")
        for name, x in result.draws.items():
            group.create_dataset(name, data=np.asarray(x, np.float64))
        for name, dtype in SHARD_ARRAYS.items():
            f.create_dataset(name, data=np.asarray(getattr(result, name), dtype))
        coords = f.create_group("coordinates")
        for field, value in zip(Coordinates._fields, coordinates, strict=True):
            coords.create_dataset(field, data=np.asarray(value))
        prior_group = f.create_group("prior")
        for field, value in prior._asdict().items():
            prior_group.create_dataset(field, data=np.asarray(value))
        f.attrs.update(
            shard=int(shard),
            num_shards=int(num_shards),
            seed=int(seed),
            n_points=int(n_points),
            names=json.dumps(list(result.draws)),
            **{key: kind(getattr(result, key)) for key, kind in SHARD_RUN_ATTRS.items()},
        )
        write_provenance_attrs(f, provenance)


def load_shard(path):
    """Read a file written by :func:`save_shard`."""
    try:
        with h5py.File(path, "r") as f:
            names = json.loads(f.attrs["names"])
            return ShardFile(
                shard=int(f.attrs["shard"]),
                num_shards=int(f.attrs["num_shards"]),
                seed=int(f.attrs["seed"]),
                n_points=int(f.attrs["n_points"]),
                run=ShardDraws(
                    draws={name: f["draws"][name][()] for name in names},
                    **{name: f[name][()] for name in SHARD_ARRAYS},
                    **{key: kind(f.attrs[key]) for key, kind in SHARD_RUN_ATTRS.items()},
                ),
                coordinates=Coordinates(**{k: f["coordinates"][k][()] for k in Coordinates._fields}),
                prior={k: f["prior"][k][()] for k in f["prior"]},
                path=str(path),
            )
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not a CMC shard file ({err}); re-run `heterodyne cmc-shard`") from err


def save_combined(path, draws, num_shards, n_chains, provenance):
    """Write the consensus draws {name: (n_draws,)}."""
    with atomic_hdf5(path) as f:
        group = f.create_group("draws")
        for name, x in draws.items():
            group.create_dataset(name, data=np.asarray(x, np.float64))
        f.attrs.update(num_shards=int(num_shards), n_chains=int(n_chains), names=json.dumps(list(draws)))
        write_provenance_attrs(f, provenance)


class CombinedDraws(NamedTuple):
    """combined.h5 as read back: ``draws`` {name: (n_chains, n_draws / n_chains)} in physical units."""

    draws: dict
    n_chains: int
    num_shards: int

    def flat(self):
        """{name: (n_draws,)}, the chains one after another."""
        return {name: x.reshape(-1) for name, x in self.draws.items()}


def load_combined(path):
    """:class:`CombinedDraws` of a file written by :func:`save_combined`."""
    try:
        with h5py.File(path, "r") as f:
            n_chains, num_shards = int(f.attrs["n_chains"]), int(f.attrs["num_shards"])
            draws = {
                name: np.asarray(f["draws"][name][()], np.float64).reshape(n_chains, -1)
                for name in json.loads(f.attrs["names"])
            }
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not a combined CMC draws file ({err}); re-run `heterodyne cmc-combine`") from err
    if not any(name in draws for name in PARAMETER_NAMES):
        raise InputError(
            f"{path}: group 'draws' holds no physics parameter (expected some of "
            f"{', '.join(PARAMETER_NAMES)}); re-run `heterodyne cmc-combine`"
        )
    return CombinedDraws(draws=draws, n_chains=n_chains, num_shards=num_shards)


def shard_paths_beside(combined_h5, num_shards):
    """``shard_{k}.h5`` for k < num_shards in the folder of ``combined.h5`` (workflow layout)."""
    folder = Path(combined_h5).parent
    return [folder / f"shard_{k}.h5" for k in range(num_shards)]


def load_shard_draws(path):
    """{name: (chains, draws)} of the group ``draws`` of a shard file (the draws alone, for figures)."""
    try:
        with h5py.File(path, "r") as f:
            return {name: np.asarray(f["draws"][name][()], dtype=np.float64) for name in f["draws"]}
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: cannot read group 'draws' ({err}); re-run `heterodyne cmc-shard`") from err
