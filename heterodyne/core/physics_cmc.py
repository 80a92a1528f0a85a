"""Per-pair (element-wise) c2 of one angle at the (t1, t2) pairs of a shard: public API
compatible with heterodyne 2.0.1. The package itself calls :func:`heterodyne.core.c2.c2_pooled`
(several angles at once), on which this is built.

A shard holds a list of (t1, t2) pairs as indices into a uniform time grid; c2 is evaluated at
those pairs only (O(n_pairs) memory).
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.core.c2 import c2_pooled


class ShardGrid(NamedTuple):
    """Pairs of a shard: ``time_grid`` (N,) in s and integer indices ``idx1``, ``idx2`` (n_pairs,)."""

    time_grid: jax.Array
    idx1: jax.Array
    idx2: jax.Array


def precompute_shard_grid(time_grid, idx1, idx2):
    """ShardGrid from a time grid and pair indices, checked to lie inside the grid."""
    idx1, idx2 = np.asarray(idx1), np.asarray(idx2)
    n = len(time_grid)
    if idx1.shape != idx2.shape or idx1.ndim != 1:
        raise ValueError(f"idx1 and idx2 must be 1-D of equal length, got {idx1.shape} and {idx2.shape}")
    if idx1.size and (min(idx1.min(), idx2.min()) < 0 or max(idx1.max(), idx2.max()) >= n):
        raise ValueError(f"pair indices must lie in [0, {n - 1}]")
    return ShardGrid(np.asarray(time_grid, dtype=np.float64), idx1.astype(np.int32), idx2.astype(np.int32))


@jax.jit
def compute_c2_elementwise(params, shard_grid, q, dt, phi_angle, contrast=1.0, offset=1.0):
    """c2 at each pair (time_grid[idx1[k]], time_grid[idx2[k]]) of ``shard_grid``: (n_pairs,).

    Same physics and arguments as :func:`heterodyne.core.jax_backend.compute_c2_heterodyne`
    (q in 1/A, dt in s, phi_angle in degrees).
    """
    one = partial(jnp.reshape, shape=(1,))
    return c2_pooled(
        params,
        shard_grid.time_grid,
        q,
        dt,
        one(phi_angle),
        jnp.zeros_like(shard_grid.idx1),
        shard_grid.idx1,
        shard_grid.idx2,
        one(contrast),
        one(offset),
    )
