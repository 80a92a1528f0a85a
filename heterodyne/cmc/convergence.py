"""Rank-normalised split R-hat, bulk and tail effective sample size of MCMC draws x (chains, draws)
(Vehtari, Gelman, Simpson, Carpenter, Buerkner, Bayesian Analysis 16, 667 (2021), "V21").

* split: every chain cut into its first and last floor(N/2) draws (the middle draw of an odd N is
  dropped), giving M = 2 * chains sequences of N' = floor(N/2) draws;
* rank normalisation of the S = M N' split draws: r = average rank among all S (1..S),
  z = Phi^-1((r - 3/8) / (S + 1/4));
* R-hat of sequences y (M, N') (numpyro ``gelman_rubin``): W = mean of the within-sequence variances
  (ddof 1), B/N' = variance of the sequence means (ddof 1), R = sqrt(((N' - 1)/N' W + B/N') / W);
  ``r_hat`` = max(R(z(split x)), R(z(|split x - median(split x)|))) (V21 section 4.2: bulk and
  folded);
* ESS of sequences y (M, N') (V21 section 3.2, Geyer's initial monotone sequence): gamma_{m,t} =
  biased autocovariance of sequence m at lag t, var+ = (N' - 1)/N' W + B/N',
  rho_t = 1 - (W - mean_m gamma_{m,t}) / var+ (rho_0 = 1), pair sums P_k = rho_{2k} + rho_{2k+1};
  K = first k >= 1 with P_k <= 0 (else the last pair k_max = floor((N' - 1)/2) - 1);
  tau = -1 + 2 sum_{k<K} min_{j<=k} P_j + rho_{2K}^+ (the even lag of pair K, kept when positive
  or when P_K >= 0), tau >= 1 / log10(S); ESS = S / tau (number of draws);
* ``ess_bulk`` = ESS(z(split x)) (V21 section 4.1);
* ``ess_tail`` = min over p in {0.05, 0.95} of ESS(split I(x <= q_p)), q_p the p-quantile of all
  draws of x (linear interpolation) (V21 section 4.3).
"""

import numpy as np
from numpyro.diagnostics import autocovariance, gelman_rubin
from scipy.special import ndtri
from scipy.stats import rankdata

#: probabilities of the two quantiles whose indicator ESS gives the tail ESS
TAIL_PROBABILITIES = (0.05, 0.95)


def split_chains(x):
    """(2 chains, floor(draws / 2)): first and last halves of every chain of x (chains, draws)."""
    x = np.asarray(x, np.float64)
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def rank_normalise(x):
    """Normal scores of the pooled ranks of x (sequences, draws), same shape."""
    x = np.asarray(x, np.float64)
    ranks = rankdata(x, method="average").reshape(x.shape)
    return ndtri((ranks - 0.375) / (x.size + 0.25))


def effective_sample_size(y):
    """ESS of the sequences y (M, N') as they are (no split, no ranks): see the module docstring."""
    y = np.asarray(y, np.float64)
    m, n = y.shape
    gamma = autocovariance(y, axis=1, bias=True).mean(axis=0)
    within = gamma[0] * n / (n - 1)
    var_plus = within * (n - 1) / n + (np.var(y.mean(axis=1), ddof=1) if m > 1 else 0.0)
    rho = 1.0 - (within - gamma) / var_plus
    rho[0] = 1.0
    k_max = (n - 1) // 2 - 1
    pairs = rho[0 : 2 * k_max + 2 : 2] + rho[1 : 2 * k_max + 2 : 2]
    non_positive = np.flatnonzero(pairs[1:] <= 0)
    k_stop = int(non_positive[0]) + 1 if non_positive.size else k_max
    even = rho[2 * k_stop]
    tail = even if (even > 0 or pairs[k_stop] >= 0) else 0.0
    tau = -1.0 + 2.0 * np.sum(np.minimum.accumulate(pairs[:k_stop])) + tail
    return float(m * n / max(tau, 1.0 / np.log10(m * n)))


def r_hat(x):
    """Rank-normalised split R-hat of x (chains, draws): max of bulk and folded (dimensionless)."""
    split = split_chains(x)
    folded = np.abs(split - np.median(split))
    return float(max(gelman_rubin(rank_normalise(split)), gelman_rubin(rank_normalise(folded))))


def ess_bulk(x):
    """Bulk ESS of x (chains, draws): ESS of the rank-normalised split chains (number of draws)."""
    return effective_sample_size(rank_normalise(split_chains(x)))


def ess_tail(x):
    """Tail ESS of x (chains, draws): smaller ESS of the split indicators I(x <= q05), I(x <= q95)."""
    x = np.asarray(x, np.float64)
    return min(effective_sample_size(split_chains(x <= np.quantile(x, p))) for p in TAIL_PROBABILITIES)


def convergence(x):
    """{r_hat, ess_bulk, ess_tail} of one quantity's draws x (chains, draws)."""
    return {"r_hat": r_hat(x), "ess_bulk": ess_bulk(x), "ess_tail": ess_tail(x)}
