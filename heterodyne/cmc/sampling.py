"""NUTS on one Consensus Monte Carlo shard: data assembly, the run, and its draws.

The sampler starts every chain at the NLSQ result x0 (u = 0, i.e. theta = NLSQ values; see
:mod:`heterodyne.cmc.model`). Its inverse mass matrix starts at the Laplace covariance of the
shard, (d^2 U / dx^2)^-1 at x0 with U(x) = -log p(x) the potential over the unconstrained sites x
(eigenvalues of the Hessian floored at ``HESSIAN_EIGEN_FLOOR``; only its diagonal when
``dense_mass`` is false). Warm-up adapts the step size, and also re-estimates the mass matrix when
``adapt_mass_matrix`` is true (numpyro's windowed adaptation). The run returns the physical draws
theta (chains, draws) by name plus the divergence flags. Chains run in parallel (``pmap`` over
devices) when ``jax.local_device_count() >= chains``, otherwise one after another.
"""

import logging
import time
from functools import partial
from typing import NamedTuple

import jax
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS, init_to_value
from numpyro.infer.util import log_density

from heterodyne.cmc.model import ShardData, shard_model

log = logging.getLogger(__name__)

#: smallest Hessian eigenvalue kept in the Laplace mass matrix (largest variance 1e4 in u units)
HESSIAN_EIGEN_FLOOR = 1e-4


class NutsSettings(NamedTuple):
    """The sampler options of the ``cmc`` config section."""

    warmup: int
    samples: int
    chains: int
    target_accept: float
    dense_mass: bool
    adapt_mass_matrix: bool
    max_tree_depth: int
    sample_noise_scale: bool

    @classmethod
    def from_config(cls, cmc):
        return cls(**{name: cmc[name] for name in cls._fields})


class ShardDraws(NamedTuple):
    """Draws of one shard: ``draws`` {name: (chains, draws)}, ``diverging`` (chains, draws) bool;
    ``wall_time_s`` covers the Laplace matrix, compilation, warm-up and sampling."""

    draws: dict
    diverging: np.ndarray
    wall_time_s: float
    chain_method: str


def shard_data(dataset, sigma, points, pad_to, num_shards):
    """ShardData of ``points`` (a :class:`~heterodyne.cmc.pooling.PooledPoints`) padded with
    masked copies of its first point to length ``pad_to``; ``sigma`` (n_phi,) per-angle noise sd."""
    n = len(points)
    if n == 0 or pad_to < n:
        raise ValueError(f"shard has {n} points; pad_to={pad_to} must be >= that and > 0")
    pad = np.zeros(pad_to - n, dtype=np.int32)
    take = np.concatenate([np.arange(n, dtype=np.int32), pad])
    phi_index, idx1, idx2 = points.phi_index[take], points.idx1[take], points.idx2[take]
    return ShardData(t=np.asarray(dataset.t, np.float64), q=float(dataset.q), dt=float(dataset.dt),
                     phi_unique=np.asarray(dataset.phi, np.float64), phi_index=phi_index, idx1=idx1,
                     idx2=idx2, c2=np.asarray(dataset.c2)[phi_index, idx1, idx2],
                     sigma=np.asarray(sigma, np.float64)[phi_index],
                     mask=np.arange(pad_to) < n, prior_power=1.0 / num_shards)


def chain_method_for(chains):
    """"parallel" when there is a device per chain, else "sequential"."""
    return "parallel" if jax.local_device_count() >= chains else "sequential"


@partial(jax.jit, static_argnames=("sample_noise_scale",))
def _potential_hessian(x0, data, spec, sample_noise_scale):
    _, unravel = ravel_pytree(_start(len(spec.centre), sample_noise_scale))

    def potential(x):
        return -log_density(shard_model, (data, spec), {"sample_noise_scale": sample_noise_scale},
                            unravel(x))[0]

    return jax.hessian(potential)(x0)


def _start(n_quantities, sample_noise_scale):
    """Initial values of the sampled sites: the NLSQ result (u = 0, log noise scale 0)."""
    start = {"u": np.zeros(n_quantities)}
    if sample_noise_scale:
        start["log_noise_scale"] = np.float64(0.0)
    return start


def laplace_inverse_mass(data, spec, sample_noise_scale, dense):
    """Laplace covariance of the shard at the start (module docstring), sites flattened in
    ``ravel_pytree`` order as NUTS does; (D, D) if ``dense`` else its diagonal (D,)."""
    x0, _ = ravel_pytree(_start(len(spec.centre), sample_noise_scale))
    hessian = np.asarray(_potential_hessian(x0, data, spec, sample_noise_scale))
    eigenvalues, vectors = np.linalg.eigh(0.5 * (hessian + hessian.T))
    if eigenvalues.min() < HESSIAN_EIGEN_FLOOR:
        log.warning("Laplace mass matrix: %d Hessian eigenvalue(s) below %g (smallest %.3g) floored; "
                    "some direction is weakly determined at the NLSQ start",
                    int(np.sum(eigenvalues < HESSIAN_EIGEN_FLOOR)), HESSIAN_EIGEN_FLOOR, eigenvalues.min())
    covariance = (vectors / np.maximum(eigenvalues, HESSIAN_EIGEN_FLOOR)) @ vectors.T
    return covariance if dense else np.diag(covariance).copy()


def run_shard(data, spec, names, settings, seed, shard, progress_bar=True):
    """Run NUTS on one shard; the key is fold_in(PRNGKey(seed), shard), so equal seeds give
    equal draws. ``names`` label the columns of theta (from ``build_model_spec``)."""
    start = time.perf_counter()
    model = partial(shard_model, sample_noise_scale=settings.sample_noise_scale)
    inverse_mass = laplace_inverse_mass(data, spec, settings.sample_noise_scale, settings.dense_mass)
    kernel = NUTS(model, init_strategy=init_to_value(values=_start(len(names), settings.sample_noise_scale)),
                  inverse_mass_matrix=inverse_mass, adapt_mass_matrix=settings.adapt_mass_matrix,
                  target_accept_prob=settings.target_accept, dense_mass=settings.dense_mass,
                  max_tree_depth=settings.max_tree_depth)
    method = chain_method_for(settings.chains)
    mcmc = MCMC(kernel, num_warmup=settings.warmup, num_samples=settings.samples,
                num_chains=settings.chains, chain_method=method, progress_bar=progress_bar,
                jit_model_args=True)
    log.info("shard %d: %d points, %d sampled quantities, %d chains (%s), %d warm-up + %d draws",
             shard, int(np.sum(data.mask)), len(names), settings.chains, method, settings.warmup,
             settings.samples)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), shard)
    mcmc.run(key, data, spec, extra_fields=("diverging",))
    samples = mcmc.get_samples(group_by_chain=True)
    theta = np.asarray(samples["theta"])
    draws = {name: theta[:, :, m] for m, name in enumerate(names)}
    if settings.sample_noise_scale:
        draws["noise_scale"] = np.asarray(samples["noise_scale"])
    diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"], bool)
    wall = time.perf_counter() - start
    log.info("shard %d: done in %.1f s, %d divergent transitions", shard, wall, int(diverging.sum()))
    return ShardDraws(draws, diverging, wall, method)
