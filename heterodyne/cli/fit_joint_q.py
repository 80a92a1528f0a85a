"""`heterodyne fit-joint-q`: one NLSQ fit over all q bins of a dataset -> nlsq.json + nlsq.h5.

``--data`` and ``--weights`` list the bins' dataset.h5 and weights.json in the same order (any
order of q; the outputs list the bins in increasing q). Shared physics parameters, per-q free
fractions (``f0@q0.005``), per-map contrast/offset: :mod:`heterodyne.fit.joint_q`; the output
format: :mod:`heterodyne.fit.joint_q_results`. A bin's name is its results folder as recorded by
`heterodyne ingest` (the dataset's provenance ``q_bin``), else the dataset file's folder name.

Exit status 0 also when the solver stopped without converging (recorded); 1 when the fit produced
non-finite numbers; 2 for bad input (counts of --data and --weights differ, datasets of different
source files, the same q twice, weights not made from their dataset): no output is written.
"""

import numpy as np

from heterodyne.cli import add_output_arguments, add_settings_argument, read_settings
from heterodyne.cli.fit_run import run_fit
from heterodyne.fit.joint_q import fit_joint_q
from heterodyne.fit.joint_q_inputs import joint_q_inputs, model_maps
from heterodyne.fit.joint_q_results import save_joint_results
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    add_settings_argument(parser, "nlsq")
    parser.add_argument("--data", required=True, nargs="+", help="dataset.h5 of every q bin (`heterodyne ingest`)")
    parser.add_argument(
        "--weights",
        required=True,
        nargs="+",
        help="weights.json of every q bin, in the order of --data (`heterodyne weight`)",
    )
    add_output_arguments(parser, "nlsq.json to write", "nlsq.h5 to write")


def run(args):
    section = read_settings(args)["nlsq"]
    inputs = joint_q_inputs(section, args.data, args.weights)
    fit = run_fit("fit-joint-q", fit_joint_q, inputs.bins, inputs.settings)
    if fit is None:
        return 1
    save_joint_results(
        args.output_json,
        args.output_h5,
        fit,
        [np.asarray(d.phi) for d in inputs.datasets],
        inputs.inputs,
        model_maps(fit, inputs.datasets),
        provenance_record(section, [path for pair in inputs.inputs for path in pair]),
        inputs.held,
    )
    return 0
