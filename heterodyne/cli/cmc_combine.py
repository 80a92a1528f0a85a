"""`heterodyne cmc-combine`: consensus of the shard draws -> cmc/summary.json, cmc/combined.h5.

Where the NLSQ fit found frame-shared (speckle) noise, the combined draws are widened to its
sandwich covariance (:mod:`heterodyne.cmc.noise_adjustment`; summary ``noise_adjustment``: the
sd factor per quantity, null when nothing was adjusted).
The summary also holds the consensus against the NLSQ fit per free physics parameter
(``nlsq_comparison``) and the quantities the data did not determine (``undetermined``, each also
logged as a warning); definitions in :mod:`heterodyne.cmc.compare`. K, the number of shards
expected, comes from the config and the dataset (:func:`heterodyne.cmc.pooling.shard_count`).
"""

import json
import logging

import numpy as np

from heterodyne.atomic import atomic_output
from heterodyne.cmc.combine import combine_shards, posterior_summary, shard_summary
from heterodyne.cmc.compare import UNDETERMINED_SD_RATIO, nlsq_comparison, undetermined
from heterodyne.cmc.diagnostics import E_BFMI_MIN, ESS_MIN, R_HAT_LIMIT, convergence_flags
from heterodyne.cmc.draws_file import load_shard, save_combined
from heterodyne.cmc.model import build_model_spec
from heterodyne.cmc.noise_adjustment import adjustment_matrix, nlsq_covariances, sd_factors
from heterodyne.cmc.pooling import shard_count, shard_count_origin
from heterodyne.cli import add_settings_argument, read_settings
from heterodyne.data.dataset import count_usable, load_dataset
from heterodyne.errors import InputError
from heterodyne.json_record import read_json_record
from heterodyne.lineage import check_lineage, check_same_origin
from heterodyne.provenance import provenance_record

log = logging.getLogger("heterodyne.cmc")


def add_arguments(parser):
    add_settings_argument(parser, "cmc", "nlsq")
    parser.add_argument("--data", required=True, help="dataset.h5 the shards were sampled from")
    parser.add_argument("--nlsq", required=True, help="nlsq.json the shards started from")
    parser.add_argument("--shards", required=True, nargs="+", help="every shard_k.h5 of the dataset")
    parser.add_argument("--output-json", required=True, help="summary file to write (JSON)")
    parser.add_argument("--output-h5", required=True, help="combined draws file to write (HDF5)")


def load_matching_shards(paths, num_shards, seed, origin):
    """Shard files ordered by index; InputError unless they are exactly shards 0..K-1 of one run
    (this K and seed; ``origin`` says where K and the seed came from) with the same quantities and
    chains (the draws per chain may differ: a shard extends its chains until its ESS suffices), and
    every quantity's draws vary."""
    shards = [load_shard(p) for p in paths]
    for path, s in zip(paths, shards, strict=True):
        if s.num_shards != num_shards or s.seed != seed:
            raise InputError(f"{path}: written with K={s.num_shards} shards, seed={s.seed} but the config "
                             f"gives K={num_shards}, cmc.seed={seed} ({origin}); re-run cmc-shard for every shard")
    indices = sorted(s.shard for s in shards)
    if indices != list(range(num_shards)):
        raise InputError(f"--shards: got shard indices {indices}, need each of 0..{num_shards - 1} once")
    first = shards[0]
    chains = {name: x.shape[0] for name, x in first.draws.items()}
    for path, s in zip(paths, shards, strict=True):
        if {name: x.shape[0] for name, x in s.draws.items()} != chains:
            raise InputError(f"{path}: quantities or chain counts differ from {paths[0]}; re-run "
                             "cmc-shard for every shard with the same config")
    for path, s in zip(paths, shards, strict=True):
        stuck = [name for name, x in s.draws.items() if not (np.all(np.isfinite(x)) and np.ptp(x) > 0)]
        if stuck:
            raise InputError(f"{path}: the draws of {', '.join(stuck)} are constant or not finite (the "
                             f"chains did not move; {int(np.sum(s.diverging))} divergences), so this shard "
                             "has no posterior to combine. Check the NLSQ result it started from (nlsq.json: "
                             "parameters at a bound, non-converged fit), raise cmc.warmup, and re-run cmc-shard")
    for path, s in zip(paths, shards, strict=True):
        if not all(np.array_equal(a, b) for a, b in zip(s.coordinates, first.coordinates, strict=True)):
            raise InputError(f"{path}: sampled in other coordinates than {paths[0]} (a different nlsq.json or "
                             "cmc config); re-run cmc-shard for every shard")
    n_draws = min(next(iter(s.draws.values())).size for s in shards)
    if n_draws <= len(chains):
        raise InputError(f"{paths[0]}: {n_draws} draws per shard for {len(chains)} quantities; the consensus "
                         "needs more draws than quantities to invert each shard's covariance. Raise "
                         "cmc.samples (or cmc.chains) and re-run cmc-shard")
    return sorted(shards, key=lambda s: s.shard)


def check_coordinates(expected, recorded, path, nlsq_path):
    """InputError unless the shard's sampling coordinates ``recorded`` are those that ``nlsq_path``
    and the config give now (``expected``; equal to 1e-12 relative: the same computation): the
    consensus maps the draws back to physical units with them."""
    for field, a, b in zip(expected._fields, expected, recorded, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0.0):
            raise InputError(f"{path}: sampled in other coordinates ('{field}' differs) than {nlsq_path} and "
                             "the config give now (changed nlsq bounds, cmc.prior or fit); re-run cmc-shard "
                             "for every shard")


def run(args):
    config = read_settings(args)
    cmc = config["cmc"]
    check_same_origin(args.shards)
    check_lineage({args.nlsq: [args.data], **{path: [args.data, args.nlsq] for path in args.shards}})
    dataset = load_dataset(args.data)
    nlsq = read_json_record(args.nlsq, ("parameters", "phi"), "fit-nlsq")
    n_points = count_usable(dataset.c2, dataset.valid)
    num_shards = shard_count(n_points, cmc)
    shards = load_matching_shards(args.shards, num_shards, cmc["seed"],
                                  shard_count_origin(n_points, cmc))
    n_chains = next(iter(shards[0].draws.values())).shape[0]
    spec, info = build_model_spec(nlsq, cmc["prior"], dataset.t, dataset.q, len(dataset.phi), num_shards,
                                  bounds=config["nlsq"]["bounds"], source=args.nlsq)
    sampled = [name for name in shards[0].draws if name != "noise_scale"]
    if sampled != info.names:
        raise InputError(f"{args.shards[0]}: sampled {sampled} but {args.nlsq} and the config give "
                         f"{info.names}; re-run cmc-shard for every shard")
    check_coordinates(spec.coords, shards[0].coordinates, args.shards[0], args.nlsq)

    covariances = nlsq_covariances(nlsq)
    spread, widening = None, None
    if covariances is not None:
        spread = adjustment_matrix(covariances, info.names, shards[0].coordinates, spec.prior.centre,
                                   len(shards[0].draws))
        widening = sd_factors(covariances, info.names)
        log.info("elements share frames (speckle noise model): posterior widened by the NLSQ sandwich, "
                 "sd x %s", ", ".join(f"{name} {f:.2f}" for name, f in widening.items()))
    draws, parametric = combine_shards([s.unconstrained for s in shards], list(shards[0].draws),
                                       shards[0].coordinates, spread)
    summary = posterior_summary(draws, n_chains)
    per_shard = [shard_summary(s) for s in shards]
    flagged = [entry["shard"] for entry in per_shard if entry["flagged"]]
    combined = convergence_flags(summary)
    for entry in per_shard:
        if entry["flagged"]:
            log.warning("shard %d flagged: %s", entry["shard"], "; ".join(entry["flag_reasons"]))
    if combined["flagged"]:
        log.warning("combined posterior flagged: %s", "; ".join(combined["flag_reasons"]))
    vague = undetermined(summary, info.names, spec.prior)
    for entry in vague:
        log.warning("%s not determined by the data: posterior sd %.4g is %.2f of its prior sd %.4g (> %s)",
                    entry["parameter"], entry["sd"], entry["sd_over_prior_sd"], entry["prior_sd"],
                    UNDETERMINED_SD_RATIO)

    provenance = provenance_record({"cmc": cmc, "nlsq": {"bounds": config["nlsq"]["bounds"]}},
                                   [args.data, args.nlsq, *args.shards])
    record = {"parameters": summary, "parametric": parametric, "combined": combined,
              "shards": per_shard, "num_shards": num_shards, "n_points": n_points, "flagged_shards": flagged,
              "nlsq_comparison": nlsq_comparison(summary, nlsq), "undetermined": vague,
              "noise_adjustment": widening,
              "limits": {"r_hat": R_HAT_LIMIT, "ess": ESS_MIN, "e_bfmi": E_BFMI_MIN,
                         "undetermined_sd_ratio": UNDETERMINED_SD_RATIO},
              "n_chains": n_chains, "n_draws": len(next(iter(draws.values()))), "provenance": provenance}
    save_combined(args.output_h5, draws, num_shards, n_chains, provenance)
    with atomic_output(args.output_json) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return 0
