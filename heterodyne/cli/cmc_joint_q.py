"""`heterodyne cmc-joint-q`: the joint multi-q posterior from the per-q CMC posteriors.

``--joint-nlsq results/D/joint_q/nlsq.json --folders results/D/q0.005 results/D/q0.01
--output-json results/D/joint_q/cmc/summary.json --output-h5 results/D/joint_q/cmc/combined.h5``

Reads each q bin folder's nlsq.json, cmc/summary.json and cmc/combined.h5 and the joint NLSQ
fit's nlsq.json, forms the consensus of :mod:`heterodyne.cmc.joint_q` over the joint fit's shared
parameters (priors by the ``cmc.prior`` rule around each fit's values) and writes:

* summary.json: layout in :mod:`heterodyne.cmc.summary_file`.
* combined.h5: the joint draws, layout of :func:`heterodyne.cmc.draws_file.save_combined` with
  ``num_shards`` the number of q bins.

A bin whose inputs belong to another run, or a joint fit over other folders: one error line,
exit status 2, nothing written.
"""

import logging
from pathlib import Path

import numpy as np

from heterodyne.cli import add_folders_argument, add_output_arguments, add_settings_argument, read_settings
from heterodyne.cmc.combine import posterior_summary
from heterodyne.cmc.compare import nlsq_comparison
from heterodyne.cmc.diagnostics import convergence_flags
from heterodyne.cmc.draws_file import save_combined
from heterodyne.cmc.joint_q import SKEW_LIMIT, joint_posterior
from heterodyne.cmc.joint_q_inputs import fit_prior, read_bin, read_joint_fit
from heterodyne.cmc.summary_file import save_joint_summary
from heterodyne.errors import InputError
from heterodyne.provenance import provenance_record

log = logging.getLogger("heterodyne.cmc")


def add_arguments(parser):
    add_settings_argument(parser, "cmc")
    parser.add_argument("--joint-nlsq", required=True, help="nlsq.json of `heterodyne fit-joint-q`")
    add_folders_argument(parser, "the per-q result folders results/<dataset>/<q folder> the joint fit used")
    add_output_arguments(parser, "summary file to write (JSON)", "joint draws file to write (HDF5)")


def run(args):
    cmc = read_settings(args)["cmc"]
    folders = [Path(f) for f in args.folders]
    joint = read_joint_fit(args.joint_nlsq, folders)
    shared, q_of = joint.shared_parameters, joint.q_of_folder
    folders.sort(key=lambda f: q_of[f.name])
    read = [read_bin(f, shared, cmc["prior"]) for f in folders]
    centre, precision = fit_prior(joint.parameters, shared, cmc["prior"], args.joint_nlsq)
    try:
        posterior = joint_posterior([b for b, _ in read], shared, centre, precision)
    except (ValueError, np.linalg.LinAlgError) as err:
        raise InputError(
            f"--folders: no joint posterior ({err}); see the per-q cmc/summary.json files "
            "(too few draws for the quantities: raise cmc.samples)"
        ) from None
    n_chains = next(iter(read[0][0].draws.values())).shape[0]
    summary = posterior_summary(posterior.draws, n_chains)
    criteria = convergence_flags(summary)
    reasons = [f"the CMC posterior of {b.folder} is flagged" for b, s in read if s.flagged]
    if not posterior.agreement["agree"]:
        reasons.append(
            f"the per-q posteriors disagree (chi2 = {posterior.agreement['chi2']:.4g} on "
            f"{posterior.agreement['dof']} dof, p = {posterior.agreement['p']:.3g}): no single "
            "set of shared parameters describes every q bin"
        )
    reasons += [
        f"{e['parameter']} at {e['folder']} has skewness {e['skew']:.2f} (|skew| > {SKEW_LIMIT}): "
        "the Gaussian consensus is approximate"
        for e in posterior.skewed
    ]
    reasons += criteria["flag_reasons"]
    for reason in reasons:
        log.warning("joint multi-q posterior: %s", reason)
    sd = np.sqrt(np.diag(posterior.covariance))
    comparison = nlsq_comparison(summary, {"parameters": {name: joint.parameters[name] for name in shared}})
    provenance = provenance_record({"cmc": cmc}, [args.joint_nlsq, *(f / "cmc" / "combined.h5" for f in folders)])
    record = {
        "parameters": summary,
        "shared_parameters": shared,
        "parametric": {name: {"mean": float(posterior.mean[k]), "sd": float(sd[k])} for k, name in enumerate(shared)},
        "q_bins": [{"folder": b.folder, "q": q_of[b.folder], "cmc_flagged": s.flagged} for b, s in read],
        "agreement": posterior.agreement,
        "skewed": posterior.skewed,
        "nlsq_comparison": comparison,
        "combined": criteria,
        "flagged": bool(reasons),
        "flag_reasons": reasons,
        "n_chains": n_chains,
        "n_draws": len(next(iter(posterior.draws.values()))),
        "provenance": provenance,
    }
    save_combined(args.output_h5, posterior.draws, len(folders), n_chains, provenance)
    save_joint_summary(args.output_json, record)
    print(
        f"{args.output_json}: joint posterior of {', '.join(shared)} over {len(folders)} q bins"
        f"{'; flagged: ' + '; '.join(reasons) if reasons else ''}"
    )
    return 0
