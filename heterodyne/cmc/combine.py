"""Consensus of the K shard subposteriors and the posterior summary.

The shards are combined in the shared sampling coordinates y (:mod:`heterodyne.cmc.coordinates`;
the same bijection y -> theta in every shard), where each subposterior is closest to Gaussian and
every combined draw maps back inside the bounds. Sample-level consensus (Scott et al. 2016) by
``numpyro.infer.hmc_util.consensus`` with full covariance: with W_k = Cov_k^-1 of shard k's
draws of y,

    y_s = (sum_k W_k)^-1 sum_k W_k y_{k,s}      (draw s of every shard),

then theta_s = theta(y_s) (physical units; the noise scale exp(lambda) when sampled). The Gaussian
``parametric`` combination (mean (sum_k W_k)^-1 sum_k W_k mean_k, covariance (sum_k W_k)^-1) is
reported beside it as the mean and sd of theta over PARAMETRIC_DRAWS draws of that normal in y.
Both are affine-equivariant, so they are computed on y standardised by the pooled mean and sd of
all shards (for a well-conditioned inverse) and mapped back. The combined draw s = c * n_draws + d
keeps chain c of every shard, so the combined draws are reshaped to (chains, draws) for R-hat,
bulk and tail ESS (:mod:`heterodyne.cmc.convergence`).
"""

import numpy as np
from numpyro.infer.hmc_util import consensus, parametric

from heterodyne.cmc.convergence import convergence
from heterodyne.cmc.coordinates import theta_draws
from heterodyne.cmc.diagnostics import shard_diagnostics

#: draws of the parametric (Gaussian) combination used to summarise it in physical units
PARAMETRIC_DRAWS = 4000


def _physical(y, names, coordinates):
    """{name: (S,)} of draws y (S, D): theta(y), and exp(lambda) as ``noise_scale``."""
    theta = theta_draws(y, coordinates)
    draws = {name: theta[:, m] for m, name in enumerate(names) if name != "noise_scale"}
    if "noise_scale" in names:
        draws["noise_scale"] = np.exp(y[:, -1])
    return draws


def combine_shards(shards):
    """Consensus draws {name: (chains * draws,)} and parametric {name: {"mean", "sd"}} of shard
    files ``shards`` (:class:`~heterodyne.cmc.draws_file.ShardFile`, same quantities, shapes and
    coordinates)."""
    names = list(shards[0].draws)
    coordinates = shards[0].coordinates
    flat = [s.unconstrained.reshape(-1, s.unconstrained.shape[-1]) for s in shards]
    pooled = np.concatenate(flat)
    mean, sd = pooled.mean(axis=0), pooled.std(axis=0)
    sd[sd == 0] = 1.0
    standardised = [(f - mean) / sd for f in flat]
    combined = np.asarray(consensus(standardised, diagonal=False)) * sd + mean
    p_mean, p_cov = (np.asarray(a) for a in parametric(standardised, diagonal=False))
    gaussian = np.random.default_rng(0).multivariate_normal(p_mean, p_cov, PARAMETRIC_DRAWS) * sd + mean
    param = {name: {"mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1))}
             for name, x in _physical(gaussian, names, coordinates).items()}
    return _physical(combined, names, coordinates), param


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
