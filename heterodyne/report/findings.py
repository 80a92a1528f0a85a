"""Warnings a reader must see: NLSQ not converged, parameters held fixed for a single angle,
parameters at a bound, flagged CMC shards, a
flagged combined posterior (each with the reasons cmc-combine recorded) and quantities the data
did not determine (posterior sd > limit x prior sd, :mod:`heterodyne.cmc.compare`)."""

#: an optimum with the components exchanged closer than this in chi2 (a likelihood ratio of
#: exp(25 / 2), "5 sigma" for one parameter) is reported as a competing solution
EXCHANGED_DELTA_CHI2 = 25.0


def fit_warnings(nlsq_record, cmc_summary):
    """List of one-line warnings (empty when nothing is wrong)."""
    found = []
    if not nlsq_record["converged"]:
        found.append(f"NLSQ did not converge (termination: {nlsq_record['termination']}).")
    other = nlsq_record.get("exchanged_optimum")
    if other is not None and other["delta_chi2"] < EXCHANGED_DELTA_CHI2:
        values = ", ".join(f"{name} = {value:.4g}" for name, value in other["parameters"].items())
        found.append(
            f"NLSQ: restarted with reference and sample exchanged, the fit reaches another optimum "
            f"only delta chi2 = {other['delta_chi2']:.3g} worse ({values}): with a sample fraction "
            "near 0.5 the data hardly tell the components apart, and the NLSQ errors and the CMC "
            "posterior (sampled around the best optimum) do not include the other one."
        )
    for name, reason in nlsq_record.get("held_fixed", {}).items():
        found.append(f"{name} held fixed although the config frees it: {reason}.")
    for name, entry in nlsq_record["parameters"].items():
        if entry["at_bound"]:
            found.append(f"NLSQ parameter {name} = {entry['value']:.6g} {entry['unit']} is at a bound.")
    shards = {entry["shard"]: entry for entry in cmc_summary["shards"]}
    for k in cmc_summary["flagged_shards"]:
        found.append(f"CMC shard {k} flagged: {'; '.join(shards[k]['flag_reasons'])}.")
    combined = cmc_summary["combined"]
    if combined["flagged"]:
        found.append(f"CMC combined posterior flagged: {'; '.join(combined['flag_reasons'])}.")
    limit = cmc_summary["limits"]["undetermined_sd_ratio"]
    for entry in cmc_summary["undetermined"]:
        found.append(
            f"CMC: {entry['parameter']} is not determined by the data: posterior sd {entry['sd']:.3g} is "
            f"{entry['sd_over_prior_sd']:.2f} of its prior sd {entry['prior_sd']:.3g} (limit {limit}), so "
            "its posterior mostly repeats the prior (cmc.prior)."
        )
    return found
