"""HDF5 files of CMC draws (written atomically, with provenance).

Shard file ``cmc/shard_k.h5``: group ``draws`` with one float64 dataset (chains, draws) per sampled
quantity (physical units: D0_sample, ..., contrast_0, offset_0, ...), dataset ``diverging``
(chains, draws) bool, attributes ``shard``, ``num_shards``, ``seed``, ``n_points``,
``wall_time_s``, ``chain_method``, ``names`` (JSON list, sampling order) and ``provenance``.

Combined file ``cmc/combined.h5``: group ``draws`` with one dataset (n_draws,) per quantity,
attributes ``num_shards``, ``n_chains``, ``names`` and ``provenance``.
"""

import json
from typing import NamedTuple

import h5py
import numpy as np

from heterodyne.atomic import atomic_hdf5
from heterodyne.errors import InputError
from heterodyne.provenance import write_provenance_attrs


class ShardFile(NamedTuple):
    shard: int
    num_shards: int
    seed: int
    n_points: int
    wall_time_s: float
    draws: dict
    diverging: np.ndarray


def save_shard(path, shard, num_shards, seed, n_points, result, provenance):
    """Write one shard's :class:`~heterodyne.cmc.sampling.ShardDraws`."""
    with atomic_hdf5(path) as f:
        group = f.create_group("draws")
        for name, x in result.draws.items():
            group.create_dataset(name, data=np.asarray(x, np.float64))
        f.create_dataset("diverging", data=np.asarray(result.diverging, bool))
        f.attrs.update(shard=int(shard), num_shards=int(num_shards), seed=int(seed),
                       n_points=int(n_points), wall_time_s=float(result.wall_time_s),
                       chain_method=result.chain_method, names=json.dumps(list(result.draws)))
        write_provenance_attrs(f, provenance)


def load_shard(path):
    """Read a file written by :func:`save_shard`."""
    try:
        with h5py.File(path, "r") as f:
            names = json.loads(f.attrs["names"])
            return ShardFile(shard=int(f.attrs["shard"]), num_shards=int(f.attrs["num_shards"]),
                             seed=int(f.attrs["seed"]), n_points=int(f.attrs["n_points"]),
                             wall_time_s=float(f.attrs["wall_time_s"]),
                             draws={name: f["draws"][name][()] for name in names},
                             diverging=f["diverging"][()])
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
