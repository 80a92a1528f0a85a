"""NUTS on the shards of a dataset: one shard as `heterodyne cmc-shard` samples it
(:func:`sample_shard`), or every shard one after another in this process (:func:`sample_all_shards`:
the consensus without the workflow, for tests and benchmarks)."""

import jax

from heterodyne.cmc.pooling import max_shard_size, pooled_points, shard_points
from heterodyne.cmc.sampling import run_shard, shard_data


def sample_shard(dataset, weights, points, spec, info, settings, num_shards, seed, shard, progress_bar=True):
    """(:class:`~heterodyne.cmc.draws_file.ShardDraws`, its number of points) of shard ``shard`` of
    the pooled ``points`` of ``dataset`` split into ``num_shards`` with ``seed``, padded to the
    largest shard; noise from ``weights``, model ``spec``/``info``, sampler ``settings``
    (:class:`~heterodyne.cmc.sampling.NutsSettings`)."""
    mine = shard_points(points, num_shards, seed, shard)
    data = shard_data(dataset, weights, mine, max_shard_size(points, num_shards, seed), num_shards)
    return run_shard(data, spec, info, settings, seed, shard, progress_bar=progress_bar), len(mine)


def sample_all_shards(dataset, weights, spec, info, settings, num_shards, seed=0, clear_caches=False):
    """[:class:`~heterodyne.cmc.draws_file.ShardDraws`] of shards 0..num_shards-1, as the workflow's
    cmc-shard jobs would give them, without progress bars. ``clear_caches``: drop JAX's compiled
    executables before each shard (many shards in one process otherwise pile them up until the
    process runs out of memory mappings; the persistent cache makes the recompilation a load)."""
    points = pooled_points(dataset.c2, dataset.valid)
    runs = []
    for k in range(num_shards):
        if clear_caches:
            jax.clear_caches()
        runs.append(
            sample_shard(dataset, weights, points, spec, info, settings, num_shards, seed, k, progress_bar=False)[0]
        )
    return runs
