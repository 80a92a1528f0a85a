"""Consensus of the K shard subposteriors and the posterior summary.

The shards are combined in the shared sampling coordinates y (:mod:`heterodyne.cmc.coordinates`;
the same bijection y -> theta in every shard), where each subposterior is closest to Gaussian and
every combined draw maps back inside the bounds. Sample-level consensus (Scott et al. 2016) by
``numpyro.infer.hmc_util.consensus`` with full covariance: with W_k = Cov_k^-1 of shard k's
draws of y,

    y_s = (sum_k W_k)^-1 sum_k W_k y_{k,s}      (draw s of every shard),

then theta_s = theta(y_s) (physical units; the noise scale exp(lambda) when sampled). The Gaussian
``parametric`` combination (mean m = (sum_k W_k)^-1 sum_k W_k mean_k, covariance
S = (sum_k W_k)^-1) is reported beside it, mapped to theta to first order: mean theta(m), sd
sqrt(diag(G S G^T)) with G = d theta / d y at m.
Both are affine-equivariant, so they are computed on y standardised by the pooled mean and sd of
all shards (for a well-conditioned inverse) and mapped back. The combined draw s = c * n_draws + d
keeps chain c of every shard, so the combined draws are reshaped to (chains, draws) for R-hat,
bulk and tail ESS (:mod:`heterodyne.cmc.convergence`). Shards whose chains were extended to
reach the R-hat and ESS criteria (:func:`heterodyne.cmc.sampling.run_shard`) hold more draws
per chain; each chain is thinned evenly to the shortest shard's length first.
"""

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer.hmc_util import consensus, parametric

from heterodyne.cmc.convergence import convergence
from heterodyne.cmc.coordinates import theta_draws, theta_from_y
from heterodyne.cmc.diagnostics import shard_diagnostics


def _physical(y, names, coordinates):
    """{name: (S,)} of draws y (S, D): theta(y), and exp(lambda) as ``noise_scale``."""
    theta = theta_draws(y, coordinates)
    draws = {name: theta[:, m] for m, name in enumerate(names) if name != "noise_scale"}
    if "noise_scale" in names:
        draws["noise_scale"] = np.exp(y[:, -1])
    return draws


def combine_shards(unconstrained, names, coordinates, spread=None):
    """Consensus draws {name: (chains * draws,)} and parametric {name: {"mean", "sd"}} of the
    shards' draws ``unconstrained`` [(chains, draws_k, D), ...] in the shared ``coordinates``
    (draws = the smallest draws_k);
    ``names`` label the quantities (``noise_scale`` last when sampled). ``spread`` (D, D), if
    given, maps the combined draws' deviations from their mean and the parametric covariance
    (:mod:`heterodyne.cmc.noise_adjustment`)."""
    length = min(y.shape[1] for y in unconstrained)
    flat = [
        y[:, np.round(np.linspace(0, y.shape[1] - 1, length)).astype(int)].reshape(-1, y.shape[-1])
        for y in unconstrained
    ]
    pooled = np.concatenate(flat)
    mean, sd = pooled.mean(axis=0), pooled.std(axis=0)
    sd[sd == 0] = 1.0
    standardised = [(f - mean) / sd for f in flat]
    combined = np.asarray(consensus(standardised, diagonal=False)) * sd + mean
    p_mean, p_cov = (np.asarray(a) for a in parametric(standardised, diagonal=False))
    y_mean, y_cov = p_mean * sd + mean, p_cov * np.outer(sd, sd)
    if spread is not None:
        centre = combined.mean(axis=0)
        combined = centre + (combined - centre) @ spread.T
        y_cov = spread @ y_cov @ spread.T
    m = coordinates.kind.shape[0]
    gradient = np.asarray(jax.jacfwd(lambda v: theta_from_y(v, coordinates)[0])(jnp.asarray(y_mean[:m])))
    theta_mean = theta_draws(y_mean[None, :], coordinates)[0]
    theta_sd = np.sqrt(np.diag(gradient @ y_cov[:m, :m] @ gradient.T))
    param = {
        name: {"mean": float(theta_mean[k]), "sd": float(theta_sd[k])}
        for k, name in enumerate(names)
        if name != "noise_scale"
    }
    if "noise_scale" in names:
        scale = float(np.exp(y_mean[-1]))
        param["noise_scale"] = {"mean": scale, "sd": scale * float(np.sqrt(y_cov[-1, -1]))}
    return _physical(combined, names, coordinates), param


def posterior_summary(draws, n_chains):
    """{name: {mean, sd, q05, q50, q95, r_hat, ess_bulk, ess_tail}} of combined draws
    {name: (S,)}; R-hat and ESS on the draws reshaped to (n_chains, S / n_chains)."""
    summary = {}
    for name, x in draws.items():
        q05, q50, q95 = np.percentile(x, [5, 50, 95])
        summary[name] = {
            "mean": float(np.mean(x)),
            "sd": float(np.std(x, ddof=1)),
            "q05": float(q05),
            "q50": float(q50),
            "q95": float(q95),
            **convergence(x.reshape(n_chains, -1)),
        }
    return summary


def shard_summary(shard):
    """Summary entry of one shard file ``shard`` (a :class:`~heterodyne.cmc.draws_file.ShardFile`):
    index, :func:`~heterodyne.cmc.diagnostics.shard_diagnostics`, wall time, and per quantity
    mean and sd (ddof 1) beside its r_hat, ess_bulk and ess_tail."""
    run = shard.run
    entry = {"shard": int(shard.shard), **shard_diagnostics(run), "wall_time_s": float(run.wall_time_s)}
    for name, x in run.draws.items():
        entry["parameters"][name].update(mean=float(np.mean(x)), sd=float(np.std(x, ddof=1)))
    return entry
