"""``heterodyne cross-q``: are the transport and velocity parameters the same at every q?

``--folders results/D/q0.005 results/D/q0.01 [--joint results/D/joint_q/nlsq.json
[--joint-cmc results/D/joint_q/cmc/summary.json]] --output-json results/D/cross_q.json
--outdir results/D/cross_q [--alpha 0.05]``

Reads each per-q folder's nlsq.json, dataset.h5 (q and the time grid) and, where present,
cmc/summary.json; runs the chi-square tests of :mod:`heterodyne.study.cross_q` and writes
cross_q.json (layout: :mod:`heterodyne.study.cross_q_record`) and the figures
``cross_q_parameters`` and ``cross_q_rates`` (PNG, PDF, .rst caption; :mod:`heterodyne.plots.cross_q`)
into --outdir, both atomically. A single q bin is normal: the file then holds the per-q estimates
with ``test: null`` and the reason, exit status 0. A missing or unreadable input: one error line
naming the file, exit status 2, nothing written.
"""

from pathlib import Path

from heterodyne.atomic import atomic_folder
from heterodyne.cli import add_folders_argument, add_required_arguments
from heterodyne.errors import InputError
from heterodyne.plots.cross_q import verdict_text, write_cross_q_figures
from heterodyne.provenance import provenance_record
from heterodyne.study.cross_q_record import build_record, read_bins, save_cross_q

#: the names of the figures (PNG, PDF and .rst each) written into --outdir
FIGURE_STEMS = ("cross_q_parameters", "cross_q_rates")


def add_arguments(parser):
    add_folders_argument(parser, "the per-q result folders results/<dataset>/<q folder> of one dataset")
    parser.add_argument(
        "--joint",
        metavar="NLSQ_JSON",
        help="nlsq.json of a joint multi-q fit (shared parameters) to show beside the per-q fits",
    )
    parser.add_argument(
        "--joint-cmc",
        metavar="SUMMARY_JSON",
        help="summary.json of `heterodyne cmc-joint-q` (needs --joint): its 5-95 %% "
        "intervals drawn beside the joint fit",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="family-wise significance level of the tests (default 0.05)"
    )
    add_required_arguments(
        parser, output_json="cross_q.json to write", outdir="folder of the cross-q figures (replaced as a whole)"
    )


def run(args):
    if not 0.0 < args.alpha < 1.0:
        raise InputError(f"--alpha {args.alpha}: must lie in (0, 1)")
    if args.joint_cmc and not args.joint:
        raise InputError("--joint-cmc: give the joint fit's nlsq.json with --joint too")
    bins = read_bins(args.folders)
    record = build_record(bins, args.alpha, args.joint, args.joint_cmc)
    joint_files = [Path(path) for path in (args.joint, args.joint_cmc) if path]
    inputs = [path for b in bins for path in b["files"]] + joint_files
    record["provenance"] = provenance_record({"alpha": float(args.alpha)}, inputs)
    with atomic_folder(args.outdir) as outdir:
        write_cross_q_figures(outdir, record, record["provenance"])
        save_cross_q(args.output_json, record)
    print(f"{args.output_json}: {len(bins)} q bin(s); {verdict_text(record)}")
    return 0
