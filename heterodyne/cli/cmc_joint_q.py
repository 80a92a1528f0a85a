"""`heterodyne cmc-joint-q`: the joint multi-q posterior from the per-q CMC posteriors.

``--joint-nlsq results/D/joint_q/nlsq.json --folders results/D/q0.005 results/D/q0.01
--output-json results/D/joint_q/cmc/summary.json --output-h5 results/D/joint_q/cmc/combined.h5``

Forms the consensus of :func:`heterodyne.cmc.steps.joint_q_run` over the joint fit's shared
parameters and writes:

* summary.json: layout in :mod:`heterodyne.cmc.summary_file`.
* combined.h5: the joint draws, layout of :func:`heterodyne.cmc.draws_file.save_combined` with
  ``num_shards`` the number of q bins.

A bin whose inputs belong to another run, or a joint fit over other folders: one error line,
exit status 2, nothing written.
"""

from heterodyne.cli import add_folders_argument, add_output_arguments, add_step_arguments, read_settings
from heterodyne.cmc.draws_file import save_combined
from heterodyne.cmc.steps import joint_q_run
from heterodyne.cmc.summary_file import save_joint_summary


def add_arguments(parser):
    add_step_arguments(parser, ("cmc",), joint_nlsq="nlsq.json of `heterodyne fit-joint-q`")
    add_folders_argument(parser, "the per-q result folders results/<dataset>/<q folder> the joint fit used")
    add_output_arguments(parser, "summary file to write (JSON)", "joint draws file to write (HDF5)")


def run(args):
    record, draws = joint_q_run(read_settings(args)["cmc"], args.joint_nlsq, args.folders)
    save_combined(args.output_h5, draws, len(record["q_bins"]), record["n_chains"], record["provenance"])
    save_joint_summary(args.output_json, record)
    reasons = record["flag_reasons"]
    print(
        f"{args.output_json}: joint posterior of {', '.join(record['shared_parameters'])} over "
        f"{len(record['q_bins'])} q bins{'; flagged: ' + '; '.join(reasons) if reasons else ''}"
    )
    return 0
