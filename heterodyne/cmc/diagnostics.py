"""Convergence diagnostics of MCMC draws (chains, draws), rank-normalised (Vehtari et al. 2021).

Rank normalisation: r = average rank of each draw among all S draws (1..S),
z = Phi^-1((r - 3/8) / (S + 1/4)). On z, numpyro.diagnostics gives the split R-hat
(``split_gelman_rubin``: each chain cut in two halves) and the bulk effective sample size
(``effective_sample_size``, Geyer's initial monotone sequence). A shard is flagged when it has any
divergent transition or some quantity has R-hat > ``R_HAT_LIMIT``.
"""

import numpy as np
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from scipy.special import ndtri
from scipy.stats import rankdata

#: split R-hat above which a shard (or the combined posterior) is flagged
R_HAT_LIMIT = 1.05


def rank_normalise(x):
    """Normal scores of the pooled ranks of x (chains, draws), same shape."""
    x = np.asarray(x, np.float64)
    ranks = rankdata(x, method="average").reshape(x.shape)
    return ndtri((ranks - 0.375) / (x.size + 0.25))


def r_hat(x):
    """Rank-normalised split R-hat of x (chains, draws) (dimensionless, 1 at convergence)."""
    return float(split_gelman_rubin(rank_normalise(x)))


def ess_bulk(x):
    """Bulk effective sample size of x (chains, draws) (number of draws)."""
    return float(effective_sample_size(rank_normalise(x)))


def shard_diagnostics(draws, diverging):
    """{divergences, max_r_hat, min_ess_bulk, flagged} of one shard's draws {name: (chains, draws)}."""
    r_hats = [r_hat(x) for x in draws.values()]
    ess = [ess_bulk(x) for x in draws.values()]
    divergences = int(np.sum(diverging))
    max_r_hat = float(np.max(r_hats))
    return {"divergences": divergences, "max_r_hat": max_r_hat, "min_ess_bulk": float(np.min(ess)),
            "flagged": bool(divergences > 0 or not max_r_hat <= R_HAT_LIMIT)}
