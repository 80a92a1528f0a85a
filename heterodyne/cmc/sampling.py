"""NUTS on one Consensus Monte Carlo shard: data assembly, the shard's geometry, the run.

Geometry. NUTS runs in whitened coordinates z with y = y_hat + L z (identity mass matrix at the
start), where y are the shared sampling coordinates (:mod:`heterodyne.cmc.coordinates`),
y_hat is the shard's posterior mode and L L^T = H^-1 with the Gauss-Newton precision

    H = J^T J + P,     J_km = d r_k / d y_m,   r_k = (c2_model,k - c2_k) / sigma_k,

(PSD by construction, unlike the observed Hessian away from the mode) and P the positive part of
the Hessian of the prior and Jacobian terms (plus 2 n_points for the log noise scale, its Fisher
information). y_hat is found by damped Newton steps y <- y + t H^-1 grad log p(y) from the NLSQ result
(t halved until log p increases; H of the NLSQ result). In a near-Gaussian posterior z is then about
standard normal, so NUTS needs few leapfrog steps of a step size near 1 whatever the
parameters' scales and correlations.

Chains start at y_hat + L e, e ~ N(0, I) (one draw per chain, so R-hat sees dispersed starts)
and run one after another (``sequential``) in every environment, so the draws depend only on the
config, the seed and the software, never on the number of CPUs. Warm-up adapts the step size,
and also the mass matrix when ``adapt_mass_matrix`` is true (numpyro's windowed adaptation, dense
when ``dense_mass``).

After sampling every draw is mapped to the representative of the model's symmetries
(:func:`heterodyne.core.symmetries.canonical`: v0 >= 0; J_ref <= J_sample at the mean time where
the components can be exchanged) and back to y, so all shards describe the same mode.
"""

import logging
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.infer import MCMC, NUTS

from heterodyne.cmc.coordinates import theta_draws, theta_from_y, y_from_theta
from heterodyne.cmc.model import ShardData, log_density, log_prior, model_c2, split_noise
from heterodyne.core.pooled_likelihood import prepare_points
from heterodyne.core.symmetries import canonical

log = logging.getLogger(__name__)

#: the one chain method: draws must not depend on the number of CPU devices
CHAIN_METHOD = "sequential"
#: damped Gauss-Newton steps towards the shard's mode at most
MODE_ITERATIONS = 30


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


class Whitening(NamedTuple):
    """y = y_hat + L z of one shard: ``y_hat`` (D,), ``chol`` L (D, D) lower triangular."""

    y_hat: np.ndarray
    chol: np.ndarray


class ShardDraws(NamedTuple):
    """Draws of one shard, arrays (chains, draws) unless noted: ``draws`` {name: physical
    values}, ``unconstrained`` (chains, draws, D) in the shared coordinates y, ``diverging``,
    ``num_steps`` (leapfrog steps per draw), ``energy`` (Hamiltonian), ``step_size`` (chains,);
    ``wall_time_s`` covers the geometry, compilation, warm-up and sampling."""

    draws: dict
    unconstrained: np.ndarray
    diverging: np.ndarray
    num_steps: np.ndarray
    energy: np.ndarray
    step_size: np.ndarray
    max_tree_depth: int
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
                     mask=np.arange(pad_to) < n, prior_power=1.0 / num_shards,
                     rows=prepare_points(phi_index, idx1, idx2, len(dataset.t), len(dataset.phi)))


def start_position(spec, sample_noise_scale):
    """y of the NLSQ result (log noise scale 0), moved min(0.1 s_m, span / 4) inside its support
    where it sits on a bound (no coordinate maps a bound to a finite y)."""
    prior = spec.prior
    margin = np.minimum(0.1 * prior.stderr, 0.25 * (prior.high - prior.low))
    y = y_from_theta(np.clip(prior.centre, prior.low + margin, prior.high - margin), spec.coords)
    return np.append(y, 0.0) if sample_noise_scale else y


def _scaled_residuals(y, data, spec):
    theta, _ = theta_from_y(split_noise(y, spec)[0], spec.coords)
    return jnp.where(data.mask, (model_c2(theta, data, spec) - data.c2) / data.sigma, 0.0)


def _prior_terms(y, data, spec):
    theta, log_jacobian = theta_from_y(split_noise(y, spec)[0], spec.coords)
    return log_jacobian + data.prior_power * log_prior(theta, spec.prior)


@jax.jit
def _gauss_newton_precision(y, data, spec):
    """Gauss-Newton precision H at y (module docstring)."""
    m = spec.prior.centre.shape[0]
    jac = jax.jacfwd(_scaled_residuals)(y, data, spec)
    prior_hessian = -jax.hessian(_prior_terms)(y, data, spec)
    eigenvalues, vectors = jnp.linalg.eigh(0.5 * (prior_hessian + prior_hessian.T))
    precision = jac.T @ jac + (vectors * jnp.maximum(eigenvalues, 0.0)) @ vectors.T
    if y.shape[0] > m:  # log noise scale: Fisher information 2 n + its prior
        precision = precision.at[m, m].add(2.0 * jnp.sum(data.mask) + data.prior_power)
    return precision


_value_and_grad = jax.jit(jax.value_and_grad(log_density))


def shard_geometry(data, spec, sample_noise_scale):
    """Whitening (mode y_hat and L, module docstring) of one shard. The steps use H of the NLSQ
    result (the mode is near it), and L comes from H at the mode."""
    y = jnp.asarray(start_position(spec, sample_noise_scale))
    value, grad = _value_and_grad(y, data, spec)
    if not np.isfinite(float(value)):
        raise ValueError("the shard's log density is not finite at the NLSQ result")
    precision = _gauss_newton_precision(y, data, spec)
    for _ in range(MODE_ITERATIONS):
        step = jnp.linalg.solve(precision, grad)
        if not float(grad @ step) > 1e-8:  # Newton decrement: log p within 1e-8 of its maximum
            break
        for halving in range(20):
            candidate = y + 0.5**halving * step
            candidate_value, candidate_grad = _value_and_grad(candidate, data, spec)
            if float(candidate_value) > float(value):
                break
        else:
            break
        y, value, grad = candidate, candidate_value, candidate_grad
    covariance = np.linalg.inv(np.asarray(_gauss_newton_precision(y, data, spec)))
    chol = np.linalg.cholesky(0.5 * (covariance + covariance.T))
    return Whitening(np.asarray(y), chol)


def whitened_model(data, spec, whitening):
    """NumPyro model: z ~ flat on R^D, log p(y_hat + L z) as a factor."""
    z = numpyro.sample("z", dist.ImproperUniform(constraints.real_vector, (), whitening.y_hat.shape))
    numpyro.factor("log_density", log_density(whitening.y_hat + whitening.chol @ z, data, spec))


def canonical_draws(y, spec, info):
    """Draws y (..., D) mapped to the symmetries' representative; returns (theta {name: (...)},
    y (..., D)), theta in physical units by quantity name (and ``noise_scale`` when sampled)."""
    shape = y.shape[:-1]
    flat = np.asarray(y).reshape(-1, y.shape[-1])
    theta = theta_draws(flat, spec.coords)
    free = np.asarray(spec.free_index)
    params = np.tile(spec.base_params, (len(flat), 1))
    params[:, free] = theta[:, :len(free)]
    theta[:, :len(free)] = canonical(params, float(spec.coords.t_mean), info.absorber)[:, free]
    m = theta.shape[1]
    y_canonical = flat.copy()
    y_canonical[:, :m] = y_from_theta(theta, spec.coords)
    draws = {name: theta[:, k].reshape(shape) for k, name in enumerate(info.names)}
    if flat.shape[1] > m:
        draws["noise_scale"] = np.exp(flat[:, m]).reshape(shape)
    return draws, y_canonical.reshape(y.shape)


def run_shard(data, spec, info, settings, seed, shard, progress_bar=True):
    """Run NUTS on one shard; the key is fold_in(PRNGKey(seed), shard), so equal seeds give equal
    draws. ``info`` (:class:`~heterodyne.cmc.model.SpecInfo`) names the sampled quantities."""
    start = time.perf_counter()
    whitening = shard_geometry(data, spec, settings.sample_noise_scale)
    dim = whitening.y_hat.shape[0]
    key = jax.random.fold_in(jax.random.PRNGKey(seed), shard)
    key, init_key = jax.random.split(key)
    z_start = jax.random.normal(init_key, (settings.chains, dim))
    if settings.chains == 1:  # numpyro takes one chain's start without the chain axis
        z_start = z_start[0]
    kernel = NUTS(whitened_model, adapt_mass_matrix=settings.adapt_mass_matrix,
                  target_accept_prob=settings.target_accept, dense_mass=settings.dense_mass,
                  max_tree_depth=settings.max_tree_depth)
    mcmc = MCMC(kernel, num_warmup=settings.warmup, num_samples=settings.samples,
                num_chains=settings.chains, chain_method=CHAIN_METHOD, progress_bar=progress_bar,
                jit_model_args=True)
    log.info("shard %d: %d points, %d sampled coordinates, %d chains (%s), %d warm-up + %d draws",
             shard, int(np.sum(data.mask)), dim, settings.chains, CHAIN_METHOD, settings.warmup,
             settings.samples)
    mcmc.run(key, data, spec, whitening, init_params={"z": z_start},
             extra_fields=("diverging", "num_steps", "energy", "adapt_state.step_size"))
    z = np.asarray(mcmc.get_samples(group_by_chain=True)["z"])
    y = whitening.y_hat + z @ whitening.chol.T
    draws, y = canonical_draws(y, spec, info)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    wall = time.perf_counter() - start
    diverging = np.asarray(extra["diverging"], bool)
    num_steps = np.asarray(extra["num_steps"], np.int64)
    log.info("shard %d: done in %.1f s, %d divergent transitions, mean %.1f leapfrog steps per draw",
             shard, wall, int(diverging.sum()), float(num_steps.mean()))
    return ShardDraws(draws=draws, unconstrained=y, diverging=diverging, num_steps=num_steps,
                      energy=np.asarray(extra["energy"], np.float64),
                      step_size=np.asarray(extra["adapt_state.step_size"], np.float64)[:, -1],
                      max_tree_depth=settings.max_tree_depth, wall_time_s=wall, chain_method=CHAIN_METHOD)
