"""The CMC steps after sampling, from input files to result record and draws: the consensus of one
q bin's shards (:func:`consensus_run`, `heterodyne cmc-combine`) and the joint multi-q posterior
(:func:`joint_q_run`, `heterodyne cmc-joint-q`). Each returns (record, draws); the command saves
them with :func:`~heterodyne.cmc.draws_file.save_combined` and the summary file's writer.

Per q bin: where the NLSQ fit found frame-shared (speckle) noise, the combined draws are widened to
its sandwich covariance (:mod:`heterodyne.cmc.noise_adjustment`; summary ``noise_adjustment``: the
sd factor per quantity, null when nothing was adjusted). The summary also holds the consensus
against the NLSQ fit per free physics parameter (``nlsq_comparison``) and the quantities the data
did not determine (``undetermined``, each also logged as a warning); definitions in
:mod:`heterodyne.cmc.compare`. K, the number of shards expected, comes from the config and the
dataset (:func:`heterodyne.cmc.pooling.shard_count`).

Joint multi-q: reads each q bin folder's nlsq.json, cmc/summary.json and cmc/combined.h5 and the
joint NLSQ fit's nlsq.json and forms the consensus of :mod:`heterodyne.cmc.joint_q` over the joint
fit's shared parameters (priors by the ``cmc.prior`` rule around each fit's values).
"""

import logging
from pathlib import Path

import numpy as np

from heterodyne.cmc.combine import combine_shards, posterior_summary, shard_summary
from heterodyne.cmc.compare import UNDETERMINED_SD_RATIO, nlsq_comparison, undetermined
from heterodyne.cmc.diagnostics import E_BFMI_MIN, ESS_MIN, R_HAT_LIMIT, convergence_flags
from heterodyne.cmc.joint_q import SKEW_LIMIT, joint_posterior
from heterodyne.cmc.joint_q_inputs import fit_prior, read_bin, read_joint_fit
from heterodyne.cmc.model import config_model_spec
from heterodyne.cmc.noise_adjustment import adjustment_matrix, nlsq_covariances, sd_factors
from heterodyne.cmc.pooling import shard_count, shard_count_origin
from heterodyne.cmc.shard_set import check_sampling_model, load_matching_shards
from heterodyne.cmc.summary_file import summary_record
from heterodyne.data.dataset import count_usable, load_dataset
from heterodyne.errors import InputError
from heterodyne.fit.results import read_nlsq
from heterodyne.lineage import check_lineage, check_same_origin
from heterodyne.provenance import provenance_record

log = logging.getLogger("heterodyne.cmc")


def _n_chains(draws):
    """The number of chains of draws {name: (chains, draws)}."""
    return next(iter(draws.values())).shape[0]


def _n_draws(draws):
    """The number of draws of draws {name: (n_draws,)}."""
    return len(next(iter(draws.values())))


def consensus_run(config, data_path, nlsq_path, shard_paths):
    """(summary.json record, combined draws {name: (n_draws,)}) of the consensus of the shard files
    ``shard_paths`` sampled from ``data_path`` starting at ``nlsq_path``, with the config sections
    ``config`` (cmc, nlsq); module docstring. The flagged shards, a flagged combined posterior and
    the undetermined quantities are logged as warnings."""
    cmc = config["cmc"]
    check_same_origin(shard_paths)
    check_lineage({nlsq_path: [data_path], **{path: [data_path, nlsq_path] for path in shard_paths}})
    dataset = load_dataset(data_path)
    nlsq = read_nlsq(nlsq_path).record
    n_points = count_usable(dataset.c2, dataset.valid)
    num_shards = shard_count(n_points, cmc)
    shards = load_matching_shards(shard_paths, num_shards, cmc["seed"], shard_count_origin(n_points, cmc))
    first = shards[0]
    n_chains = _n_chains(first.run.draws)
    spec, info = config_model_spec(nlsq, config, dataset, num_shards, nlsq_path)
    check_sampling_model(spec, info.names, shards, nlsq_path)

    covariances = nlsq_covariances(nlsq)
    spread, widening = None, None
    if covariances is not None:
        spread = adjustment_matrix(covariances, info.names, first.coordinates, spec.prior.centre, len(first.run.draws))
        widening = sd_factors(covariances, info.names)
        log.info(
            "elements share frames (speckle noise model): posterior widened by the NLSQ sandwich, sd x %s",
            ", ".join(f"{name} {f:.2f}" for name, f in widening.items()),
        )
    draws, parametric = combine_shards(
        [s.run.unconstrained for s in shards], list(first.run.draws), first.coordinates, spread
    )
    summary = posterior_summary(draws, n_chains)
    record = summary_record(
        parameters=summary,
        parametric=parametric,
        combined=convergence_flags(summary),
        shards=[shard_summary(s) for s in shards],
        num_shards=num_shards,
        n_points=n_points,
        nlsq_comparison=nlsq_comparison(summary, nlsq),
        undetermined=undetermined(summary, info.names, spec.prior),
        noise_adjustment=widening,
        limits={
            "r_hat": R_HAT_LIMIT,
            "ess": ESS_MIN,
            "e_bfmi": E_BFMI_MIN,
            "undetermined_sd_ratio": UNDETERMINED_SD_RATIO,
        },
        n_chains=n_chains,
        n_draws=_n_draws(draws),
        provenance=provenance_record(
            {"cmc": cmc, "nlsq": {"bounds": config["nlsq"]["bounds"]}}, [data_path, nlsq_path, *shard_paths]
        ),
    )
    _log_flags(record)
    return record, draws


def _log_flags(record):
    """Warn of each flagged shard, a flagged combined posterior and each undetermined quantity of
    the summary ``record``."""
    for entry in record["shards"]:
        if entry["flagged"]:
            log.warning("shard %d flagged: %s", entry["shard"], "; ".join(entry["flag_reasons"]))
    if record["combined"]["flagged"]:
        log.warning("combined posterior flagged: %s", "; ".join(record["combined"]["flag_reasons"]))
    for entry in record["undetermined"]:
        log.warning(
            "%s not determined by the data: posterior sd %.4g is %.2f of its prior sd %.4g (> %s)",
            entry["parameter"],
            entry["sd"],
            entry["sd_over_prior_sd"],
            entry["prior_sd"],
            record["limits"]["undetermined_sd_ratio"],
        )


def joint_q_run(cmc, joint_nlsq_path, folders):
    """(joint summary.json record, joint draws {name: (n_draws,)}) of the per-q result ``folders``
    (results/<dataset>/<q folder>) and the joint NLSQ fit at ``joint_nlsq_path`` with the config
    section ``cmc``; module docstring and :mod:`heterodyne.cmc.summary_file`. Each flag reason is
    logged as a warning."""
    folders = [Path(f) for f in folders]
    joint = read_joint_fit(joint_nlsq_path, folders)
    shared, q_of = joint.shared_parameters, joint.q_of_folder
    folders.sort(key=lambda f: q_of[f.name])
    read = [read_bin(f, shared, cmc["prior"]) for f in folders]
    centre, precision = fit_prior(joint.parameters, shared, cmc["prior"], joint_nlsq_path)
    try:
        posterior = joint_posterior([b for b, _ in read], shared, centre, precision)
    except (ValueError, np.linalg.LinAlgError) as err:
        raise InputError(
            f"--folders: no joint posterior ({err}); see the per-q cmc/summary.json files "
            "(too few draws for the quantities: raise cmc.samples)"
        ) from None
    n_chains = _n_chains(read[0][0].draws)
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
    record = {
        "parameters": summary,
        "shared_parameters": shared,
        "parametric": {name: {"mean": float(posterior.mean[k]), "sd": float(sd[k])} for k, name in enumerate(shared)},
        "q_bins": [{"folder": b.folder, "q": q_of[b.folder], "cmc_flagged": s.flagged} for b, s in read],
        "agreement": posterior.agreement,
        "skewed": posterior.skewed,
        "nlsq_comparison": nlsq_comparison(summary, {"parameters": {name: joint.parameters[name] for name in shared}}),
        "combined": criteria,
        "flagged": bool(reasons),
        "flag_reasons": reasons,
        "n_chains": n_chains,
        "n_draws": _n_draws(posterior.draws),
        "provenance": provenance_record({"cmc": cmc}, [joint_nlsq_path, *(f / "cmc" / "combined.h5" for f in folders)]),
    }
    return record, posterior.draws
