"""Pooled points of all angles and their stratified random split into Consensus Monte Carlo shards.

A pooled point k is (phi_index[k], idx1[k], idx2[k]): angle phi[phi_index[k]] and times
t1 = t[idx1[k]] < t2 = t[idx2[k]]. Only the strict upper triangle i < j is used (each unordered
pair once, diagonal excluded) and only where the element is valid and finite.

Stratification: within each angle the points are ordered by lag j - i, then by t1 index i, and
cut into consecutive blocks of K points; each block hands one point to every shard in a random
order (fixed seed). Every shard therefore holds every angle and spans the whole range of lag and
t1, and shard sizes differ by at most one point per angle.

Number of shards K (:func:`shard_count`): ``cmc.num_shards`` when it is given (not null);
otherwise K = max(1, ceil(n_points / points_per_shard)), n_points the number of usable
pooled points of all selected angles, so that every shard holds at most about points_per_shard
points (n_points / K <= points_per_shard).
"""

import math
from typing import NamedTuple

import numpy as np

from heterodyne.data.dataset import usable


class PooledPoints(NamedTuple):
    """Integer index arrays of equal length n_points: angle index and time indices (i < j)."""

    phi_index: np.ndarray
    idx1: np.ndarray
    idx2: np.ndarray

    def take(self, selection):
        """The points at ``selection`` (integer indices or boolean mask)."""
        return PooledPoints(self.phi_index[selection], self.idx1[selection], self.idx2[selection])

    def __len__(self):
        return len(self.phi_index)


def pooled_points(c2, valid):
    """All usable points of (n_phi, N, N) maps (:func:`usable`).

    Ordered by angle, then row-major over the upper triangle.
    """
    phi_index, idx1, idx2 = np.nonzero(usable(c2, valid))
    return PooledPoints(phi_index.astype(np.int32), idx1.astype(np.int32), idx2.astype(np.int32))


def shard_count(n_points, cmc):
    """Number of shards K for ``n_points`` usable pooled points and the ``cmc`` config section
    (module docstring); ``n_points`` is not used when ``cmc.num_shards`` is given."""
    if cmc["num_shards"] is not None:
        return int(cmc["num_shards"])
    return max(1, math.ceil(n_points / cmc["points_per_shard"]))


def shard_count_origin(n_points, cmc):
    """Where K came from, for messages: the config key (and the point count it was applied to)."""
    if cmc["num_shards"] is not None:
        return f"cmc.num_shards = {cmc['num_shards']}"
    return f"cmc.points_per_shard = {cmc['points_per_shard']} and {n_points} usable points"


def shard_labels(points, num_shards, seed):
    """Shard label in [0, num_shards) of each pooled point (stratified by angle, lag and t1).

    Deterministic for a given ``seed``; see the module docstring for the scheme.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    rng = np.random.default_rng(seed)
    labels = np.empty(len(points), dtype=np.int32)
    lag = points.idx2 - points.idx1
    for angle in np.unique(points.phi_index):
        members = np.flatnonzero(points.phi_index == angle)
        ordered = members[np.lexsort((points.idx1[members], lag[members]))]
        n_blocks = -(-len(ordered) // num_shards)
        block_labels = np.stack([rng.permutation(num_shards) for _ in range(n_blocks)]).ravel()
        labels[ordered] = block_labels[: len(ordered)]
    return labels


def shard_points(points, num_shards, seed, shard):
    """Points of shard ``shard`` (0-based) of the stratified split with ``seed``."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must lie in [0, {num_shards - 1}], got {shard}")
    return points.take(shard_labels(points, num_shards, seed) == shard)


def max_shard_size(points, num_shards, seed):
    """Size of the largest shard: the common (padded) length that lets all shards share one
    compiled sampler."""
    return int(np.bincount(shard_labels(points, num_shards, seed), minlength=num_shards).max())
