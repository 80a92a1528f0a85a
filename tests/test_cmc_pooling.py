"""Pooled points (phi, i < j, valid only) and their stratified random split into shards."""

import numpy as np
import pytest

from heterodyne.cmc.pooling import max_shard_size, pooled_points, shard_count, shard_labels, shard_points
from heterodyne.data.dataset import count_usable

N_PHI, N, K = 3, 40, 4


@pytest.fixture(scope="module")
def maps():
    rng = np.random.default_rng(0)
    c2 = rng.normal(1.0, 0.1, (N_PHI, N, N))
    valid = rng.random(c2.shape) > 0.05
    c2[1, 3, 10] = np.nan  # a non-finite element marked valid must still be dropped
    return c2, valid


def test_pooled_points_are_the_valid_finite_upper_triangle(maps):
    c2, valid = maps
    points = pooled_points(c2, valid)
    expected = sum(
        1
        for a in range(N_PHI)
        for i in range(N)
        for j in range(i + 1, N)
        if valid[a, i, j] and np.isfinite(c2[a, i, j])
    )
    assert len(points) == expected
    assert np.all(points.idx1 < points.idx2)
    assert np.all(valid[points.phi_index, points.idx1, points.idx2])
    assert not np.any((points.phi_index == 1) & (points.idx1 == 3) & (points.idx2 == 10))


def test_shards_partition_the_points_and_hold_every_angle(maps):
    points = pooled_points(*maps)
    labels = shard_labels(points, K, seed=7)
    counts = np.bincount(labels, minlength=K)
    assert counts.sum() == len(points) and counts.min() > 0
    assert counts.max() - counts.min() <= N_PHI  # at most one extra point per angle
    assert max_shard_size(points, K, 7) == counts.max()
    for k in range(K):
        shard = shard_points(points, K, 7, k)
        assert len(shard) == counts[k]
        assert set(shard.phi_index.tolist()) == set(range(N_PHI))


def test_every_shard_spans_lag_and_t1_like_the_whole(maps):
    points = pooled_points(*maps)
    labels = shard_labels(points, K, seed=3)
    lag = points.idx2 - points.idx1
    for a in range(N_PHI):
        on_angle = points.phi_index == a
        for k in range(K):
            mine = on_angle & (labels == k)
            # stratified by lag: at every lag threshold the shard holds 1/K of the points, +-1
            for threshold in range(1, N):
                n_all = np.sum(on_angle & (lag <= threshold))
                assert abs(np.sum(mine & (lag <= threshold)) - n_all / K) <= 1
            # t1 quartiles of the shard match those of the angle's points within 2 frames
            assert np.allclose(
                np.percentile(points.idx1[mine], [25, 50, 75]),
                np.percentile(points.idx1[on_angle], [25, 50, 75]),
                atol=2,
            )


def test_split_is_fixed_by_the_seed(maps):
    points = pooled_points(*maps)
    assert np.array_equal(shard_labels(points, K, 11), shard_labels(points, K, 11))
    assert not np.array_equal(shard_labels(points, K, 11), shard_labels(points, K, 12))


def test_bad_shard_index_is_refused(maps):
    points = pooled_points(*maps)
    with pytest.raises(ValueError, match="shard must lie in"):
        shard_points(points, K, 0, K)


@pytest.mark.parametrize(
    "n_points, per_shard, expected",
    [
        (1560, 1000, 2),  # 1.56 -> 2
        (2000, 1000, 2),  # exactly 2 shards of 1000
        (2001, 1000, 3),  # one point over -> 3
        (999, 1000, 1),  # fewer points than one shard holds -> 1
        (0, 1000, 1),  # never 0 shards
        (1_498_500, 100_000, 15),  # N = 1000, 3 angles
    ],
)
def test_shard_count_from_points_per_shard(n_points, per_shard, expected):
    assert shard_count(n_points, {"num_shards": None, "points_per_shard": per_shard}) == expected


def test_shard_count_is_num_shards_when_given():
    assert shard_count(10**6, {"num_shards": 7, "points_per_shard": 1000}) == 7
    assert shard_count(None, {"num_shards": 3, "points_per_shard": 50000}) == 3


def test_count_usable_matches_the_pooled_points(maps):
    c2, valid = maps
    expected = sum(
        1
        for a in range(N_PHI)
        for i in range(N)
        for j in range(i + 1, N)
        if valid[a, i, j] and np.isfinite(c2[a, i, j])
    )
    assert count_usable(c2, valid) == expected == len(pooled_points(c2, valid))
