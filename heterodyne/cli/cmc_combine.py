"""`heterodyne cmc-combine`: consensus of the shard draws -> cmc/summary.json, cmc/combined.h5.

The consensus, its noise adjustment, comparisons and flags: :func:`heterodyne.cmc.steps.consensus_run`.
"""

from heterodyne.cli import add_output_arguments, add_step_arguments, read_settings
from heterodyne.cmc.draws_file import save_combined
from heterodyne.cmc.steps import consensus_run
from heterodyne.cmc.summary_file import save_summary


def add_arguments(parser):
    add_step_arguments(
        parser,
        ("cmc", "nlsq"),
        data="dataset.h5 the shards were sampled from",
        nlsq="nlsq.json the shards started from",
    )
    parser.add_argument("--shards", required=True, nargs="+", help="every shard_k.h5 of the dataset")
    add_output_arguments(parser, "summary file to write (JSON)", "combined draws file to write (HDF5)")


def run(args):
    record, draws = consensus_run(read_settings(args), args.data, args.nlsq, args.shards)
    save_combined(args.output_h5, draws, record["num_shards"], record["n_chains"], record["provenance"])
    save_summary(args.output_json, record)
    return 0
