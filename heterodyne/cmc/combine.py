"""Consensus of the K shard subposteriors and the posterior summary.

Sample-level consensus (Scott et al. 2016) by ``numpyro.infer.hmc_util.consensus`` with full
covariance: with W_k = Cov_k^-1 of shard k's draws,

    theta_s = (sum_k W_k)^-1 sum_k W_k theta_{k,s}      (draw s of every shard, same units as theta).

The Gaussian ``parametric`` combination (mean (sum_k W_k)^-1 sum_k W_k mean_k, covariance
(sum_k W_k)^-1) is reported beside it. Both are affine-equivariant, so they are computed on draws
standardised by the pooled mean and sd of all shards (for a well-conditioned inverse) and mapped
back. The combined draw s = c * n_draws + d keeps chain c of every shard, so the combined draws are
reshaped to (chains, draws) for R-hat, bulk and tail ESS (:mod:`heterodyne.cmc.convergence`).
"""

import numpy as np
from numpyro.infer.hmc_util import consensus, parametric

from heterodyne.cmc.convergence import convergence
from heterodyne.cmc.diagnostics import shard_diagnostics


def _standardisation(shards, names):
    pooled = {name: np.concatenate([s[name].ravel() for s in shards]) for name in names}
    mean = np.array([pooled[name].mean() for name in names])
    sd = np.array([pooled[name].std() for name in names])
    sd[sd == 0] = 1.0
    return mean, sd


def _flat_standardised(shard, names, mean, sd):
    """(chains * draws, M) array of one shard's draws, standardised."""
    return np.stack([(shard[name].ravel() - mean[m]) / sd[m] for m, name in enumerate(names)], axis=1)


def combine_shards(shards):
    """Consensus draws {name: (chains * draws,)} and parametric {name: {"mean", "sd"}} of shard
    draws ``shards`` = [{name: (chains, draws)}, ...] (all with the same names and shapes)."""
    names = list(shards[0])
    mean, sd = _standardisation(shards, names)
    flat = [_flat_standardised(s, names, mean, sd) for s in shards]
    combined = np.asarray(consensus(flat, diagonal=False))
    p_mean, p_cov = (np.asarray(a) for a in parametric(flat, diagonal=False))
    draws = {name: combined[:, m] * sd[m] + mean[m] for m, name in enumerate(names)}
    param = {name: {"mean": float(p_mean[m] * sd[m] + mean[m]),
                    "sd": float(np.sqrt(p_cov[m, m]) * sd[m])} for m, name in enumerate(names)}
    return draws, param


def posterior_summary(draws, n_chains):
    """{name: {mean, sd, q05, q50, q95, r_hat, ess_bulk, ess_tail}} of combined draws
    {name: (S,)}; R-hat and ESS on the draws reshaped to (n_chains, S / n_chains)."""
    summary = {}
    for name, x in draws.items():
        q05, q50, q95 = np.percentile(x, [5, 50, 95])
        summary[name] = {"mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1)), "q05": float(q05),
                         "q50": float(q50), "q95": float(q95), **convergence(x.reshape(n_chains, -1))}
    return summary


def shard_summary(shard):
    """Summary entry of one shard file ``shard`` (a :class:`~heterodyne.cmc.draws_file.ShardFile`):
    index, :func:`~heterodyne.cmc.diagnostics.shard_diagnostics`, wall time, and per quantity
    mean and sd (ddof 1) beside its r_hat, ess_bulk and ess_tail."""
    entry = {"shard": int(shard.shard), **shard_diagnostics(shard), "wall_time_s": float(shard.wall_time_s)}
    for name, x in shard.draws.items():
        entry["parameters"][name].update(mean=float(np.mean(x)), sd=float(np.std(x, ddof=1)))
    return entry
