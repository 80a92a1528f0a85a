"""The inputs of the joint multi-q NLSQ fit (`heterodyne fit-joint-q`) from the workflow's files:
every q bin's dataset.h5 and weights.json, checked (one weights file per dataset, made from it;
one source file; no q twice), named by their results folder and ordered by increasing q; and the
fitted model maps per bin. The fit itself: :mod:`heterodyne.fit.joint_q`; its output files:
:mod:`heterodyne.fit.joint_q_results`.
"""

import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np

from heterodyne.core.c2 import c2_meshgrid
from heterodyne.data.dataset import load_dataset
from heterodyne.data.q_bins import folder_names
from heterodyne.errors import InputError
from heterodyne.fit.joint_q import QBinProblem, hold_for_bins
from heterodyne.fit.problem import build_problem
from heterodyne.fit.settings import settings_from_config
from heterodyne.lineage import check_lineage, read_provenance
from heterodyne.weighting.weights_file import load_weights

log = logging.getLogger(__name__)


class JointQInputs(NamedTuple):
    """The joint fit's ``settings`` (bins' held parameters applied), its ``bins``
    ([:class:`~heterodyne.fit.joint_q.QBinProblem`] by increasing q), the ``held`` parameters
    {name: reason}, and per bin in that order its ``datasets`` and input file pairs ``inputs``
    [(dataset.h5, weights.json)]."""

    settings: object
    bins: list
    held: dict
    datasets: list
    inputs: list


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


def joint_q_inputs(section, data_paths, weights_paths):
    """:class:`JointQInputs` of the ``nlsq`` config ``section`` and the bins' files (``data_paths``
    and ``weights_paths`` in the same order, any order of q); InputError on bad input."""
    settings = settings_from_config(section, source="--settings")
    datasets, weights, folders, order = load_bins(data_paths, weights_paths)
    settings, held = hold_for_bins(settings, [len(d.phi) for d in datasets])
    for name, reason in held.items():
        log.info("%s held fixed (every q bin has one angle): %s", name, reason)
    bins = [
        QBinProblem(
            folder=folders[b],
            q=float(datasets[b].q),
            problem=build_problem(datasets[b], weights[b], weights_path=weights_paths[b]),
            noise=weights[b].noise,
        )
        for b in order
    ]
    inputs = [(data_paths[b], weights_paths[b]) for b in order]
    return JointQInputs(settings, bins, held, [datasets[b] for b in order], inputs)


def model_maps(fit, datasets):
    """The fitted c2 maps (n_phi, N, N) of each bin of the joint ``fit``, ``datasets`` in the fit's
    bin order."""
    return [
        np.asarray(c2_meshgrid(fit.thetas[k], d.t, d.q, d.dt, d.phi, fit.contrast[k], fit.offset[k]))
        for k, d in enumerate(datasets)
    ]
