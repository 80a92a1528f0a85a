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

import logging
from pathlib import Path

import numpy as np

from heterodyne.cli import add_output_arguments, add_settings_argument, read_settings
from heterodyne.cli.fit_run import run_fit
from heterodyne.core.c2 import c2_meshgrid
from heterodyne.data.dataset import load_dataset
from heterodyne.data.q_bins import folder_names
from heterodyne.errors import InputError
from heterodyne.fit.joint_q import QBinProblem, fit_joint_q, hold_for_bins
from heterodyne.fit.joint_q_results import save_joint_results
from heterodyne.fit.problem import build_problem
from heterodyne.fit.settings import settings_from_config
from heterodyne.lineage import check_lineage, read_provenance
from heterodyne.provenance import provenance_record
from heterodyne.weighting.weights_file import load_weights

log = logging.getLogger(__name__)


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


def bin_folder(path):
    """Results folder name of a dataset file: the ``q_bin`` its ingest recorded, else its folder's
    name."""
    section = (read_provenance(path) or {}).get("config_section")
    if isinstance(section, dict) and isinstance(section.get("q_bin"), str):
        return section["q_bin"]
    return Path(path).resolve().parent.name


def check_counts(data_paths, weights_paths):
    """InputError unless there is one weights file per dataset file."""
    if len(data_paths) != len(weights_paths):
        raise InputError(
            f"--data lists {len(data_paths)} file(s) but --weights {len(weights_paths)}; give one "
            "weights.json per dataset.h5, in the same order"
        )


def check_bins(data_paths, datasets):
    """InputError unless all datasets come from one source file and no q occurs twice."""
    sources = {(d.source_sha256 or d.source_path) for d in datasets}
    if len(sources) > 1:
        listed = ", ".join(f"{p} ({d.source_path})" for p, d in zip(data_paths, datasets, strict=True))
        raise InputError(
            f"--data: the datasets come from different source files: {listed}; a joint q fit "
            "takes the q bins of one dataset entry"
        )
    q = [d.q for d in datasets]
    for i in range(len(q)):
        for j in range(i):
            if np.isclose(q[i], q[j], rtol=1e-9, atol=0.0):
                raise InputError(
                    f"--data: {data_paths[j]} and {data_paths[i]} are the same q bin "
                    f"(q = {q[i]:g} 1/A); give every q bin once"
                )


def load_bins(data_paths, weights_paths):
    """(datasets, weights, folders, order): inputs checked, ``order`` the bins by increasing q."""
    check_counts(data_paths, weights_paths)
    check_lineage({w: [d] for d, w in zip(data_paths, weights_paths, strict=True)})
    datasets = [load_dataset(p) for p in data_paths]
    check_bins(data_paths, datasets)
    weights = [load_weights(p) for p in weights_paths]
    folders = [bin_folder(p) for p in data_paths]
    if len(set(folders)) != len(folders):
        folders = folder_names([d.q for d in datasets])
    order = [int(b) for b in np.argsort([d.q for d in datasets], kind="stable")]
    return datasets, weights, folders, order


def run(args):
    section = read_settings(args)["nlsq"]
    settings = settings_from_config(section, source="--settings")
    datasets, weights, folders, order = load_bins(args.data, args.weights)
    settings, held = hold_for_bins(settings, [len(d.phi) for d in datasets])
    for name, reason in held.items():
        log.info("%s held fixed (every q bin has one angle): %s", name, reason)
    bins = [
        QBinProblem(
            folder=folders[b],
            q=float(datasets[b].q),
            problem=build_problem(datasets[b], weights[b], weights_path=args.weights[b]),
            noise=weights[b].noise,
        )
        for b in order
    ]
    fit = run_fit("fit-joint-q", fit_joint_q, bins, settings)
    if fit is None:
        return 1
    models = [
        np.asarray(
            c2_meshgrid(
                fit.thetas[k],
                datasets[b].t,
                datasets[b].q,
                datasets[b].dt,
                datasets[b].phi,
                fit.contrast[k],
                fit.offset[k],
            )
        )
        for k, b in enumerate(order)
    ]
    inputs = [(args.data[b], args.weights[b]) for b in order]
    provenance = provenance_record(section, [path for pair in inputs for path in pair])
    save_joint_results(
        args.output_json,
        args.output_h5,
        fit,
        [np.asarray(datasets[b].phi) for b in order],
        inputs,
        models,
        provenance,
        held,
    )
    return 0
