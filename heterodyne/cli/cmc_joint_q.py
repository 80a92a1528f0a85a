"""`heterodyne cmc-joint-q`: the joint multi-q posterior from the per-q CMC posteriors.

``--joint-nlsq results/D/joint_q/nlsq.json --folders results/D/q0.005 results/D/q0.01
--output-json results/D/joint_q/cmc/summary.json --output-h5 results/D/joint_q/cmc/combined.h5``

Reads each q bin folder's nlsq.json, cmc/summary.json and cmc/combined.h5 and the joint NLSQ
fit's nlsq.json, forms the consensus of :mod:`heterodyne.cmc.joint_q` over the joint fit's shared
parameters (priors by the ``cmc.prior`` rule around each fit's values) and writes:

* summary.json: ``parameters`` {name: {mean, sd, q05, q50, q95, r_hat, ess_bulk, ess_tail}} of
  the shared parameters and of each bin's nuisance ``name@folder`` (physical units);
  ``parametric`` {shared name: {mean, sd}} (Gaussian consensus); ``shared_parameters``;
  ``q_bins`` [{folder, q, cmc_flagged}]; ``agreement`` {chi2, dof, p, agree}; ``skewed``;
  ``nlsq_comparison`` (against the joint NLSQ fit, :mod:`heterodyne.cmc.compare`); ``combined``
  (R-hat and ESS criteria of the joint draws); ``flagged`` and ``flag_reasons`` (any per-q CMC
  flagged, per-q posteriors that disagree or are skewed, the criteria); ``n_chains``, ``n_draws``,
  ``provenance``.
* combined.h5: the joint draws, layout of :func:`heterodyne.cmc.draws_file.save_combined` with
  ``num_shards`` the number of q bins.

A bin whose inputs belong to another run, or a joint fit over other folders: one error line,
exit status 2, nothing written.
"""

import json
import logging
from pathlib import Path

import numpy as np

from heterodyne.atomic import atomic_output
from heterodyne.cmc.combine import posterior_summary
from heterodyne.cmc.compare import nlsq_comparison
from heterodyne.cmc.diagnostics import convergence_flags
from heterodyne.cmc.draws_file import load_combined, save_combined
from heterodyne.cmc.joint_q import SKEW_LIMIT, BinPosterior, joint_posterior
from heterodyne.cmc.model import prior_width
from heterodyne.cli import add_settings_argument, read_settings
from heterodyne.errors import InputError
from heterodyne.fit.joint_q_layout import FRACTION_NAMES
from heterodyne.json_record import read_json_record
from heterodyne.lineage import check_lineage
from heterodyne.provenance import provenance_record

log = logging.getLogger("heterodyne.cmc")


def add_arguments(parser):
    add_settings_argument(parser, "cmc")
    parser.add_argument("--joint-nlsq", required=True, help="nlsq.json of `heterodyne fit-joint-q`")
    parser.add_argument("--folders", nargs="+", required=True, metavar="FOLDER",
                        help="the per-q result folders results/<dataset>/<q folder> the joint fit used")
    parser.add_argument("--output-json", required=True, help="summary file to write (JSON)")
    parser.add_argument("--output-h5", required=True, help="joint draws file to write (HDF5)")


def _prior(entries, names, prior_config, source):
    """({name: centre}, {name: precision}) of the ``cmc.prior`` rule around the fit ``entries``."""
    centre, precision = {}, {}
    for name in names:
        value, stderr = entries[name]["value"], entries[name]["stderr"]
        if value is None or not (stderr is not None and np.isfinite(stderr) and stderr > 0):
            raise InputError(f"{source}: '{name}' has value {value} and standard error {stderr}; the "
                             "joint posterior needs a finite positive standard error. Fix the fit or hold "
                             f"'{name}' fixed in the nlsq section")
        sd, normal = prior_width(prior_config, name, float(stderr))
        centre[name], precision[name] = float(value), (1.0 / sd**2 if normal else 0.0)
    return centre, precision


def read_bin(folder, shared, prior_config):
    """(BinPosterior, its summary.json dict) of one per-q folder."""
    folder = Path(folder)
    nlsq_path, summary_path, draws_path = folder / "nlsq.json", folder / "cmc" / "summary.json", folder / "cmc" / "combined.h5"
    check_lineage({summary_path: [folder / "dataset.h5", nlsq_path], draws_path: [folder / "dataset.h5", nlsq_path]})
    nlsq = read_json_record(nlsq_path, ("parameters",), "fit-nlsq")
    summary = read_json_record(summary_path, ("combined",), "cmc-combine")
    draws, _ = load_combined(draws_path)
    free = [name for name, entry in nlsq["parameters"].items() if not entry["fixed"]]
    foreign = [name for name in free if name not in shared and name not in FRACTION_NAMES]
    if foreign:
        raise InputError(f"{nlsq_path}: {', '.join(foreign)} free here but not shared in the joint fit; "
                         "fit the q bins and the joint fit with one nlsq section")
    mine = [name for name in shared if name in draws]
    centre, precision = _prior(nlsq["parameters"], mine, prior_config, nlsq_path)
    return BinPosterior(folder.name, draws, centre, precision), summary


def run(args):
    cmc = read_settings(args)["cmc"]
    joint = read_json_record(args.joint_nlsq, ("parameters", "shared_parameters", "q_bins"), "fit-joint-q")
    folders = [Path(f) for f in args.folders]
    listed = sorted(b["folder"] for b in joint["q_bins"])
    if sorted(f.name for f in folders) != listed:
        raise InputError(f"{args.joint_nlsq}: fitted the q bins {listed}, --folders gives "
                         f"{sorted(f.name for f in folders)}; give the folders of the joint fit")
    check_lineage({args.joint_nlsq: [f / "dataset.h5" for f in folders]})
    shared = list(joint["shared_parameters"])
    q_of = {b["folder"]: float(b["q"]) for b in joint["q_bins"]}
    folders.sort(key=lambda f: q_of[f.name])
    read = [read_bin(f, shared, cmc["prior"]) for f in folders]
    centre, precision = _prior(joint["parameters"], shared, cmc["prior"], args.joint_nlsq)
    try:
        posterior = joint_posterior([b for b, _ in read], shared, centre, precision)
    except (ValueError, np.linalg.LinAlgError) as err:
        raise InputError(f"--folders: no joint posterior ({err}); see the per-q cmc/summary.json files "
                         "(too few draws for the quantities: raise cmc.samples)") from None
    n_chains = next(iter(read[0][0].draws.values())).shape[0]
    summary = posterior_summary(posterior.draws, n_chains)
    criteria = convergence_flags(summary)
    reasons = [f"the CMC posterior of {b.folder} is flagged" for b, s in read if s["combined"]["flagged"]]
    if not posterior.agreement["agree"]:
        reasons.append(f"the per-q posteriors disagree (chi2 = {posterior.agreement['chi2']:.4g} on "
                       f"{posterior.agreement['dof']} dof, p = {posterior.agreement['p']:.3g}): no single "
                       "set of shared parameters describes every q bin")
    reasons += [f"{e['parameter']} at {e['folder']} has skewness {e['skew']:.2f} (|skew| > {SKEW_LIMIT}): "
                "the Gaussian consensus is approximate" for e in posterior.skewed]
    reasons += criteria["flag_reasons"]
    for reason in reasons:
        log.warning("joint multi-q posterior: %s", reason)
    sd = np.sqrt(np.diag(posterior.covariance))
    comparison = nlsq_comparison(summary, {"parameters": {name: joint["parameters"][name] for name in shared}})
    provenance = provenance_record({"cmc": cmc}, [args.joint_nlsq, *(f / "cmc" / "combined.h5" for f in folders)])
    record = {"parameters": summary, "shared_parameters": shared,
              "parametric": {name: {"mean": float(posterior.mean[k]), "sd": float(sd[k])}
                             for k, name in enumerate(shared)},
              "q_bins": [{"folder": b.folder, "q": q_of[b.folder], "cmc_flagged": bool(s["combined"]["flagged"])}
                         for b, s in read],
              "agreement": posterior.agreement, "skewed": posterior.skewed, "nlsq_comparison": comparison,
              "combined": criteria, "flagged": bool(reasons), "flag_reasons": reasons, "n_chains": n_chains,
              "n_draws": len(next(iter(posterior.draws.values()))), "provenance": provenance}
    save_combined(args.output_h5, posterior.draws, len(folders), n_chains, provenance)
    with atomic_output(args.output_json) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print(f"{args.output_json}: joint posterior of {', '.join(shared)} over {len(folders)} q bins"
          f"{'; flagged: ' + '; '.join(reasons) if reasons else ''}")
    return 0
