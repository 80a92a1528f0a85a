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
from heterodyne.cmc.shards import shard_run


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
    _use_one_xla_thread()
    shard = shard_run(config, args.data, args.weights, args.nlsq, args.shard)
    save_shard(
        args.output,
        args.shard,
        shard.num_shards,
        config["cmc"]["seed"],
        shard.n_points,
        shard.draws,
        shard.spec.coords,
        shard.spec.prior,
        shard.provenance,
    )
    return 0
