"""NUTS on the shards of a dataset: one shard from the workflow's files as `heterodyne cmc-shard`
samples it (:func:`shard_run`, through :func:`sample_shard`), or every shard one after another in
this process (:func:`sample_all_shards`: the consensus without the workflow, for tests and
benchmarks)."""

from typing import NamedTuple

import jax

from heterodyne.cmc.draws_file import ShardDraws
from heterodyne.cmc.model import ModelSpec, config_model_spec
from heterodyne.cmc.pooling import max_shard_size, pooled_points, shard_count, shard_count_origin, shard_points
from heterodyne.cmc.sampling import NutsSettings, run_shard, shard_data
from heterodyne.data.dataset import load_dataset
from heterodyne.errors import InputError
from heterodyne.fit.results import read_nlsq
from heterodyne.lineage import check_lineage
from heterodyne.provenance import provenance_record
from heterodyne.weighting.weights_file import check_weights_for, load_weights


class ShardRun(NamedTuple):
    """One sampled shard with what its file records: the sampler's ``draws``, its ``n_points`` (unpadded), K
    (``num_shards``), the model ``spec`` (coordinates and prior) and the ``provenance`` record."""

    draws: ShardDraws
    n_points: int
    num_shards: int
    spec: ModelSpec
    provenance: dict


def shard_run(config, data_path, weights_path, nlsq_path, shard):
    """:class:`ShardRun` of shard ``shard`` of the dataset at ``data_path`` with its weights and NLSQ
    result files and the config sections ``config`` (cmc, nlsq). InputError when the files belong
    to other runs, the shard index is not below K, or the map has fewer usable points than K
    times its angles."""
    cmc = config["cmc"]
    check_lineage({weights_path: [data_path], nlsq_path: [data_path, weights_path]})
    dataset = load_dataset(data_path)
    weights = load_weights(weights_path)
    check_weights_for(dataset, weights, weights_path)
    nlsq = read_nlsq(nlsq_path, phi=dataset.phi).record

    points = pooled_points(dataset.c2, dataset.valid)
    num_shards = shard_count(len(points), cmc)
    origin = f"K = {num_shards} from {shard_count_origin(len(points), cmc)}"
    if not 0 <= shard < num_shards:
        raise InputError(f"--shard {shard}: must lie in [0, {num_shards - 1}] ({origin}); give a shard index below K")
    if len(points) < num_shards * len(dataset.phi):
        raise InputError(
            f"{data_path}: only {len(points)} usable (t1 < t2) points for {origin}; "
            "use fewer shards or widen the frame window"
        )
    spec, info = config_model_spec(nlsq, config, dataset, num_shards, nlsq_path)
    settings = NutsSettings.from_config(cmc)
    draws, n_points = sample_shard(dataset, weights, points, spec, info, settings, num_shards, cmc["seed"], shard)
    provenance = provenance_record(
        {"cmc": cmc, "nlsq": {"bounds": config["nlsq"]["bounds"]}}, [data_path, weights_path, nlsq_path]
    )
    return ShardRun(draws, n_points, num_shards, spec, provenance)


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
