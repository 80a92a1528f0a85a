"""`heterodyne cmc-shard`: NUTS on shard k of the pooled points -> cmc/shard_k.h5.

The chains run on one XLA CPU thread (``SINGLE_THREAD_XLA``; as one batch or one after another,
:func:`heterodyne.cmc.sampling.chain_method`), so the draws of a
seed are bit-identical whatever the number of CPUs the job may use (XLA's multi-threaded CPU
reductions sum in an order that depends on the thread count). Progress goes to stderr (the rule's
log): a start and end line and numpyro's progress bar.
"""

import os

from jax._src import xla_bridge  # backends_are_initialized: no public equivalent

from heterodyne.cli import (
    DATASET_HELP,
    NLSQ_HELP,
    WEIGHTS_HELP,
    add_required_arguments,
    add_step_arguments,
    read_settings,
)
from heterodyne.cmc.draws_file import save_shard
from heterodyne.cmc.model import config_model_spec
from heterodyne.cmc.pooling import pooled_points, shard_count, shard_count_origin
from heterodyne.cmc.sampling import NutsSettings
from heterodyne.cmc.shards import sample_shard
from heterodyne.data.dataset import load_dataset
from heterodyne.errors import InputError
from heterodyne.fit.results import read_nlsq
from heterodyne.lineage import check_lineage
from heterodyne.provenance import provenance_record
from heterodyne.weighting.weights_file import check_weights_for, load_weights


def add_arguments(parser):
    add_step_arguments(parser, ("cmc", "nlsq"), data=DATASET_HELP, weights=WEIGHTS_HELP, nlsq=NLSQ_HELP)
    parser.add_argument(
        "--shard",
        required=True,
        type=int,
        help="shard index k, 0 <= k < K (K: cmc.num_shards, or from cmc.points_per_shard)",
    )
    add_required_arguments(parser, output="shard file to write (HDF5)")


#: XLA flags for one CPU thread (read when JAX's CPU backend starts, i.e. before its first use)
SINGLE_THREAD_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _use_one_xla_thread():
    """Append SINGLE_THREAD_XLA to XLA_FLAGS unless JAX's backend already runs in this process (a
    caller that ran JAX before, e.g. a test calling the CLI in-process: the flags would change only
    the compilation cache keys)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if SINGLE_THREAD_XLA not in flags and not xla_bridge.backends_are_initialized():
        os.environ["XLA_FLAGS"] = f"{flags} {SINGLE_THREAD_XLA}".strip()


def run(args):
    config = read_settings(args)
    cmc = config["cmc"]
    _use_one_xla_thread()

    check_lineage({args.weights: [args.data], args.nlsq: [args.data, args.weights]})
    dataset = load_dataset(args.data)
    weights = load_weights(args.weights)
    check_weights_for(dataset, weights, args.weights)
    nlsq = read_nlsq(args.nlsq, phi=dataset.phi).record

    points = pooled_points(dataset.c2, dataset.valid)
    num_shards = shard_count(len(points), cmc)
    origin = f"K = {num_shards} from {shard_count_origin(len(points), cmc)}"
    if not 0 <= args.shard < num_shards:
        raise InputError(
            f"--shard {args.shard}: must lie in [0, {num_shards - 1}] ({origin}); give a shard index below K"
        )
    if len(points) < num_shards * len(dataset.phi):
        raise InputError(
            f"{args.data}: only {len(points)} usable (t1 < t2) points for {origin}; "
            "use fewer shards or widen the frame window"
        )
    spec, info = config_model_spec(nlsq, config, dataset, num_shards, args.nlsq)
    settings = NutsSettings.from_config(cmc)
    result, n_points = sample_shard(dataset, weights, points, spec, info, settings, num_shards, cmc["seed"], args.shard)

    provenance = provenance_record(
        {"cmc": cmc, "nlsq": {"bounds": config["nlsq"]["bounds"]}}, [args.data, args.weights, args.nlsq]
    )
    save_shard(args.output, args.shard, num_shards, cmc["seed"], n_points, result, spec.coords, spec.prior, provenance)
    return 0
