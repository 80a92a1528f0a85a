"""Warnings a reader must see: NLSQ not converged, parameters at a bound, flagged CMC shards and a
flagged combined posterior (each with the reasons cmc-combine recorded)."""


def fit_warnings(nlsq_record, cmc_summary):
    """List of one-line warnings (empty when nothing is wrong)."""
    found = []
    if not nlsq_record["converged"]:
        found.append(f"NLSQ did not converge (termination: {nlsq_record['termination']}).")
    for name, entry in nlsq_record["parameters"].items():
        if entry["at_bound"]:
            found.append(f"NLSQ parameter {name} = {entry['value']:.6g} {entry['unit']} is at a bound.")
    shards = {entry["shard"]: entry for entry in cmc_summary["shards"]}
    for k in cmc_summary["flagged_shards"]:
        found.append(f"CMC shard {k} flagged: {'; '.join(shards[k]['flag_reasons'])}.")
    combined = cmc_summary["combined"]
    if combined["flagged"]:
        found.append(f"CMC combined posterior flagged: {'; '.join(combined['flag_reasons'])}.")
    return found
