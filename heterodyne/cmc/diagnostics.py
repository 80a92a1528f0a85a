"""Sampler diagnostics of one NUTS shard and the pass criteria of a shard and of the combined
posterior (R-hat and ESS definitions: :mod:`heterodyne.cmc.convergence`).

* tree depth of a draw with n leapfrog steps: the smallest d with 2^d - 1 >= n (NumPyro builds at
  most 2^D - 1 steps at ``max_tree_depth`` D); the draw saturates the tree when n >= 2^D - 1;
* E-BFMI of a chain with Hamiltonian energies E_1..E_N (Betancourt 2016):
  sum_{n=2}^N (E_n - E_{n-1})^2 / sum_{n=1}^N (E_n - mean E)^2 (dimensionless).

A shard is flagged when any of these holds (each adds one string to ``flag_reasons``): a divergent
transition; a draw that saturates the tree depth; max R-hat > ``R_HAT_LIMIT``; min bulk or tail
ESS < ``ESS_MIN``; min E-BFMI < ``E_BFMI_MIN``. The combined posterior is flagged on the R-hat and
ESS criteria only.
"""

import numpy as np

from heterodyne.cmc.convergence import convergence

#: rank-normalised split R-hat above which a shard (or the combined posterior) is flagged
R_HAT_LIMIT = 1.01
#: bulk or tail effective sample size below which a shard (or the combined posterior) is flagged
ESS_MIN = 400
#: E-BFMI below which a shard is flagged
E_BFMI_MIN = 0.3


def tree_depth(num_steps):
    """Tree depth (int array) of draws with ``num_steps`` leapfrog steps (any shape)."""
    return np.frexp(np.asarray(num_steps, np.float64))[1]  # bit length of n: smallest d with 2^d > n


def e_bfmi(energy):
    """E-BFMI (chains,) of the Hamiltonian energies ``energy`` (chains, draws)."""
    energy = np.asarray(energy, np.float64)
    deviation = energy - energy.mean(axis=1, keepdims=True)
    return np.sum(np.diff(energy, axis=1) ** 2, axis=1) / np.sum(deviation**2, axis=1)


def _worst(per_quantity, key, sign):
    """(name, value) of the quantity with the largest sign * entry[key]; NaN counts as worst."""

    def badness(item):
        value = item[1][key]
        return np.inf if np.isnan(value) else sign * value

    name, entry = max(per_quantity.items(), key=badness)
    return name, float(entry[key])


def convergence_flags(per_quantity):
    """{max_r_hat, min_ess_bulk, min_ess_tail, flagged, flag_reasons} of per-quantity entries
    {name: {r_hat, ess_bulk, ess_tail, ...}}; a NaN value fails its criterion."""
    r_name, r_value = _worst(per_quantity, "r_hat", 1.0)
    bulk_name, bulk = _worst(per_quantity, "ess_bulk", -1.0)
    tail_name, tail = _worst(per_quantity, "ess_tail", -1.0)
    reasons = []
    if not r_value <= R_HAT_LIMIT:
        reasons.append(f"R-hat {r_value:.4f} > {R_HAT_LIMIT} ({r_name})")
    if not bulk >= ESS_MIN:
        reasons.append(f"bulk ESS {bulk:.0f} < {ESS_MIN} ({bulk_name})")
    if not tail >= ESS_MIN:
        reasons.append(f"tail ESS {tail:.0f} < {ESS_MIN} ({tail_name})")
    return {
        "max_r_hat": r_value,
        "min_ess_bulk": bulk,
        "min_ess_tail": tail,
        "flagged": bool(reasons),
        "flag_reasons": reasons,
    }


def shard_diagnostics(run):
    """Diagnostics of one shard's run ``run`` (a :class:`~heterodyne.cmc.draws_file.ShardDraws`: draws {name:
    (chains, draws)}, diverging, num_steps, energy (chains, draws), step_size (chains,),
    max_tree_depth, target_accept): divergences, target_accept (of the run kept),
    draws_per_chain, tree_depth_{mean,max,limit}, frac_at_tree_depth_limit,
    step_size and e_bfmi (per chain), min_e_bfmi, max_r_hat, min_ess_{bulk,tail}, flagged,
    flag_reasons and parameters {name: {r_hat, ess_bulk, ess_tail}}."""
    per_quantity = {name: convergence(x) for name, x in run.draws.items()}
    worst = convergence_flags(per_quantity)
    depth = tree_depth(run.num_steps)
    saturated = int(np.sum(np.asarray(run.num_steps) >= 2**run.max_tree_depth - 1))
    bfmi = e_bfmi(run.energy)
    divergences = int(np.sum(run.diverging))
    reasons = []
    if divergences:
        reasons.append(f"{divergences} divergences")
    if saturated:
        reasons.append(f"{saturated} draws at tree depth limit {run.max_tree_depth}")
    reasons += worst["flag_reasons"]
    if not bfmi.min() >= E_BFMI_MIN:
        reasons.append(f"E-BFMI {bfmi.min():.3f} < {E_BFMI_MIN} (chain {int(np.argmin(bfmi))})")
    return {
        "divergences": divergences,
        "target_accept": float(run.target_accept),
        "draws_per_chain": int(np.shape(run.num_steps)[-1]),
        "tree_depth_mean": float(depth.mean()),
        "tree_depth_max": int(depth.max()),
        "tree_depth_limit": int(run.max_tree_depth),
        "frac_at_tree_depth_limit": saturated / depth.size,
        "step_size": [float(h) for h in run.step_size],
        "e_bfmi": [float(b) for b in bfmi],
        "min_e_bfmi": float(bfmi.min()),
        "max_r_hat": worst["max_r_hat"],
        "min_ess_bulk": worst["min_ess_bulk"],
        "min_ess_tail": worst["min_ess_tail"],
        "flagged": bool(reasons),
        "flag_reasons": reasons,
        "parameters": per_quantity,
    }
