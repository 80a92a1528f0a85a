"""The inputs of the joint multi-q posterior (:mod:`heterodyne.cmc.joint_q`): each q bin's CMC
posterior with its per-q prior, and the joint NLSQ fit, read through their files' owners and
checked to belong together."""

from pathlib import Path

import numpy as np

from heterodyne.cmc.draws_file import load_combined
from heterodyne.cmc.joint_q import BinPosterior
from heterodyne.cmc.model import prior_width
from heterodyne.cmc.summary_file import read_summary
from heterodyne.core.parameters import FRACTION_NAMES
from heterodyne.errors import InputError
from heterodyne.fit.joint_q_results import read_joint_nlsq
from heterodyne.fit.results import read_nlsq
from heterodyne.lineage import check_lineage


def fit_prior(entries, names, prior_config, source):
    """({name: centre}, {name: precision}) of the ``cmc.prior`` rule around the fit ``entries``
    (nlsq.json ``parameters`` of ``source``): precision 1 / sd^2 for a normal prior, 0 for a uniform one."""
    centre, precision = {}, {}
    for name in names:
        value, stderr = entries[name]["value"], entries[name]["stderr"]
        if value is None or not (stderr is not None and np.isfinite(stderr) and stderr > 0):
            raise InputError(
                f"{source}: '{name}' has value {value} and standard error {stderr}; the "
                "joint posterior needs a finite positive standard error. Fix the fit or hold "
                f"'{name}' fixed in the nlsq section"
            )
        sd, normal = prior_width(prior_config, name, float(stderr))
        centre[name], precision[name] = float(value), (1.0 / sd**2 if normal else 0.0)
    return centre, precision


def read_joint_fit(path, folders):
    """:class:`~heterodyne.fit.joint_q_results.JointNlsqResult` of the joint fit at ``path``;
    InputError unless it fitted exactly the q bins of the result ``folders`` and was made from their
    dataset.h5."""
    joint = read_joint_nlsq(path)
    listed = sorted(joint.q_of_folder)
    if sorted(Path(f).name for f in folders) != listed:
        raise InputError(
            f"{path}: fitted the q bins {listed}, --folders gives "
            f"{sorted(Path(f).name for f in folders)}; give the folders of the joint fit"
        )
    check_lineage({path: [Path(f) / "dataset.h5" for f in folders]})
    return joint


def read_bin(folder, shared, prior_config):
    """(BinPosterior, its :class:`~heterodyne.cmc.summary_file.CmcSummary`) of one per-q folder."""
    folder = Path(folder)
    nlsq_path, summary_path = folder / "nlsq.json", folder / "cmc" / "summary.json"
    draws_path = folder / "cmc" / "combined.h5"
    check_lineage({summary_path: [folder / "dataset.h5", nlsq_path], draws_path: [folder / "dataset.h5", nlsq_path]})
    nlsq = read_nlsq(nlsq_path)
    summary = read_summary(summary_path)
    draws = load_combined(draws_path).draws
    free = [name for name, entry in nlsq.parameters.items() if not entry["fixed"]]
    foreign = [name for name in free if name not in shared and name not in FRACTION_NAMES]
    if foreign:
        raise InputError(
            f"{nlsq_path}: {', '.join(foreign)} free here but not shared in the joint fit; "
            "fit the q bins and the joint fit with one nlsq section"
        )
    mine = [name for name in shared if name in draws]
    centre, precision = fit_prior(nlsq.parameters, mine, prior_config, nlsq_path)
    return BinPosterior(folder.name, draws, centre, precision), summary
