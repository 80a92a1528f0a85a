"""`heterodyne fit-nlsq`: joint multi-angle NLSQ fit -> nlsq.json + nlsq.h5.

Exit status 0 also when the solver stopped without converging (``converged: false`` and the
reason are recorded, so the figures can still be drawn); 1 when the fit produced non-finite
numbers (no output written); 2 for bad input.
"""

import logging

import numpy as np

from heterodyne.cli import DATASET_HELP, WEIGHTS_HELP, add_output_arguments, add_step_arguments, read_settings
from heterodyne.cli.fit_run import run_fit
from heterodyne.core.c2 import c2_meshgrid
from heterodyne.data.dataset import load_dataset
from heterodyne.fit.joint_fit import fit_joint
from heterodyne.fit.problem import build_problem
from heterodyne.fit.results import save_results
from heterodyne.fit.settings import hold_for_angle_count, settings_from_config
from heterodyne.lineage import check_lineage
from heterodyne.provenance import provenance_record
from heterodyne.weighting.weights_file import load_weights

log = logging.getLogger(__name__)


def add_arguments(parser):
    add_step_arguments(parser, ("nlsq",), data=DATASET_HELP, weights=WEIGHTS_HELP)
    add_output_arguments(parser, "nlsq.json to write", "nlsq.h5 to write")


def run(args):
    section = read_settings(args)["nlsq"]
    settings = settings_from_config(section, source="--settings")
    check_lineage({args.weights: [args.data]})
    dataset = load_dataset(args.data)
    weights = load_weights(args.weights)
    settings, held = hold_for_angle_count(settings, len(dataset.phi))
    for name, reason in held.items():
        log.info("%s held fixed: %s", name, reason)
    problem = build_problem(dataset, weights, weights_path=args.weights)
    fit = run_fit("fit-nlsq", fit_joint, problem, settings, weights.noise)
    if fit is None:
        return 1
    c2_model = c2_meshgrid(fit.theta, dataset.t, dataset.q, dataset.dt, dataset.phi, fit.contrast, fit.offset)
    provenance = provenance_record(section, [args.data, args.weights])
    save_results(args.output_json, args.output_h5, fit, dataset.phi, np.asarray(c2_model), provenance, held)
    return 0
