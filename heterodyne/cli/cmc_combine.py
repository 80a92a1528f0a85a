"""`heterodyne cmc-combine`: consensus of the shard draws -> cmc/summary.json, cmc/combined.h5.

Where the NLSQ fit found frame-shared (speckle) noise, the combined draws are widened to its
sandwich covariance (:mod:`heterodyne.cmc.noise_adjustment`; summary ``noise_adjustment``: the
sd factor per quantity, null when nothing was adjusted).
The summary also holds the consensus against the NLSQ fit per free physics parameter
(``nlsq_comparison``) and the quantities the data did not determine (``undetermined``, each also
logged as a warning); definitions in :mod:`heterodyne.cmc.compare`. K, the number of shards
expected, comes from the config and the dataset (:func:`heterodyne.cmc.pooling.shard_count`).
"""

import logging

from heterodyne.cli import add_output_arguments, add_settings_argument, read_settings
from heterodyne.cmc.combine import combine_shards, posterior_summary, shard_summary
from heterodyne.cmc.compare import UNDETERMINED_SD_RATIO, nlsq_comparison, undetermined
from heterodyne.cmc.diagnostics import E_BFMI_MIN, ESS_MIN, R_HAT_LIMIT, convergence_flags
from heterodyne.cmc.draws_file import save_combined
from heterodyne.cmc.model import config_model_spec
from heterodyne.cmc.noise_adjustment import adjustment_matrix, nlsq_covariances, sd_factors
from heterodyne.cmc.pooling import shard_count, shard_count_origin
from heterodyne.cmc.shard_set import check_sampling_model, load_matching_shards
from heterodyne.cmc.summary_file import save_summary, summary_record
from heterodyne.data.dataset import count_usable, load_dataset
from heterodyne.fit.results import read_nlsq
from heterodyne.lineage import check_lineage, check_same_origin
from heterodyne.provenance import provenance_record

log = logging.getLogger("heterodyne.cmc")


def add_arguments(parser):
    add_settings_argument(parser, "cmc", "nlsq")
    parser.add_argument("--data", required=True, help="dataset.h5 the shards were sampled from")
    parser.add_argument("--nlsq", required=True, help="nlsq.json the shards started from")
    parser.add_argument("--shards", required=True, nargs="+", help="every shard_k.h5 of the dataset")
    add_output_arguments(parser, "summary file to write (JSON)", "combined draws file to write (HDF5)")


def run(args):
    config = read_settings(args)
    cmc = config["cmc"]
    check_same_origin(args.shards)
    check_lineage({args.nlsq: [args.data], **{path: [args.data, args.nlsq] for path in args.shards}})
    dataset = load_dataset(args.data)
    nlsq = read_nlsq(args.nlsq).record
    n_points = count_usable(dataset.c2, dataset.valid)
    num_shards = shard_count(n_points, cmc)
    shards = load_matching_shards(args.shards, num_shards, cmc["seed"], shard_count_origin(n_points, cmc))
    n_chains = next(iter(shards[0].draws.values())).shape[0]
    spec, info = config_model_spec(nlsq, config, dataset, num_shards, args.nlsq)
    check_sampling_model(spec, info.names, shards, args.nlsq)

    covariances = nlsq_covariances(nlsq)
    spread, widening = None, None
    if covariances is not None:
        spread = adjustment_matrix(
            covariances, info.names, shards[0].coordinates, spec.prior.centre, len(shards[0].draws)
        )
        widening = sd_factors(covariances, info.names)
        log.info(
            "elements share frames (speckle noise model): posterior widened by the NLSQ sandwich, sd x %s",
            ", ".join(f"{name} {f:.2f}" for name, f in widening.items()),
        )
    draws, parametric = combine_shards(
        [s.unconstrained for s in shards], list(shards[0].draws), shards[0].coordinates, spread
    )
    summary = posterior_summary(draws, n_chains)
    per_shard = [shard_summary(s) for s in shards]
    combined = convergence_flags(summary)
    for entry in per_shard:
        if entry["flagged"]:
            log.warning("shard %d flagged: %s", entry["shard"], "; ".join(entry["flag_reasons"]))
    if combined["flagged"]:
        log.warning("combined posterior flagged: %s", "; ".join(combined["flag_reasons"]))
    vague = undetermined(summary, info.names, spec.prior)
    for entry in vague:
        log.warning(
            "%s not determined by the data: posterior sd %.4g is %.2f of its prior sd %.4g (> %s)",
            entry["parameter"],
            entry["sd"],
            entry["sd_over_prior_sd"],
            entry["prior_sd"],
            UNDETERMINED_SD_RATIO,
        )

    provenance = provenance_record(
        {"cmc": cmc, "nlsq": {"bounds": config["nlsq"]["bounds"]}}, [args.data, args.nlsq, *args.shards]
    )
    record = summary_record(
        parameters=summary,
        parametric=parametric,
        combined=combined,
        shards=per_shard,
        num_shards=num_shards,
        n_points=n_points,
        nlsq_comparison=nlsq_comparison(summary, nlsq),
        undetermined=vague,
        noise_adjustment=widening,
        limits={
            "r_hat": R_HAT_LIMIT,
            "ess": ESS_MIN,
            "e_bfmi": E_BFMI_MIN,
            "undetermined_sd_ratio": UNDETERMINED_SD_RATIO,
        },
        n_chains=n_chains,
        n_draws=len(next(iter(draws.values()))),
        provenance=provenance,
    )
    save_combined(args.output_h5, draws, num_shards, n_chains, provenance)
    save_summary(args.output_json, record)
    return 0
