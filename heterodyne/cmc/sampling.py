"""NUTS on one Consensus Monte Carlo shard: data assembly, the shard's geometry, the run.

NUTS samples the physics coordinates y_p (and the log noise scale when sampled) under the
marginal log density of :func:`heterodyne.cmc.model.log_density`, where each angle's offset and
contrast are integrated out; each draw then gets (offset_a, contrast_a) from their Gaussian
conditional posterior (:func:`heterodyne.cmc.model.scaling_posterior`), so the draws are exact
joint draws of every quantity, in the shared coordinates y of all M quantities.

Geometry. NUTS runs in whitened coordinates z with y_p = y_hat + L z (identity mass matrix at the
start), y_hat the mode of the marginal density and L L^T = P^-1, P the Schur complement on the
physics block of the Gauss-Newton precision of all M quantities at (y_p, conditional mean of
the offsets and contrasts):

    H = J^T J + P_prior,   J_km = d r_k / d y_m,   r_k = (c2_model,k - c2_k) / sigma_k,
    P = H_pp - H_pc H_cc^-1 H_cp,

(PSD by construction, unlike the observed Hessian away from the mode; P_prior the positive part
of the Hessian of the prior and Jacobian terms; 2 n_points added for the log noise scale, its
Fisher information). y_hat is found by damped Newton steps y <- y + t P^-1 grad log p(y) from the
NLSQ result (t halved until log p increases; P of the NLSQ result). In a near-Gaussian posterior
z is then about standard normal, so NUTS needs few leapfrog steps of a step size near 1 whatever
the parameters' scales and correlations.

Chains start at y_hat + L e, e ~ N(0, I) (one draw per chain, so R-hat sees dispersed starts)
and run on one device, as one batch (``vectorized``) on small shards and one after another
(``sequential``) on large ones (:func:`chain_method`), so the draws depend only on the config, the
seed and the software, never on the number of CPUs. Warm-up adapts the step size,
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

from heterodyne.cmc.convergence import convergence
from heterodyne.cmc.coordinates import rows_in_batches, theta_draws, theta_from_y, y_from_theta
from heterodyne.cmc.diagnostics import convergence_flags
from heterodyne.cmc.draws_file import ShardDraws
from heterodyne.cmc.model import (
    ShardData,
    log_density,
    log_prior,
    model_c2,
    physics_params,
    scaling_posterior,
    split_noise,
)
from heterodyne.cmc.truncated_gaussian import box_truncated_draws
from heterodyne.core.parameters import SCALING_BOUNDS
from heterodyne.core.pooled_likelihood import prepare_points
from heterodyne.core.symmetries import canonical

log = logging.getLogger(__name__)

#: padded shard size up to which the chains step together as one batch ("vectorized"), above which
#: they run one after another ("sequential"); both on one device, so the draws do not depend on the
#: number of CPU devices ("parallel" would). A batch pays numpyro's per-step overhead (~0.3 ms) once
#: for all chains, but every step of the batch lasts as long as the chain with the deepest tree (1.5x
#: the mean number of leapfrog steps on hard shards) and the batched gradient costs 1.1-1.4x four
#: single ones above ~8 000 points (one CPU core, 4 chains): measured 1.9x faster batched on an
#: 1 800-point shard, 2x faster per iteration one after another on a 24 000-point one
#: (workflow/README.md, "How a shard is sampled")
VECTORIZED_MAX_POINTS = 8000
#: damped Gauss-Newton steps towards the shard's mode at most
MODE_ITERATIONS = 30
#: rounds of redrawing a conditional (offset, contrast) draw that left SCALING_BOUNDS
REDRAW_ROUNDS = 100
#: target acceptances of the runs that follow a run with divergent transitions, in turn (each a
#: smaller step size). Where the posterior reaches a region far stiffer than its bulk, the step size
#: adapted to the bulk makes the leapfrog integrator unstable there (epsilon sqrt(lambda) > 2, lambda
#: the largest eigenvalue of -Hessian in the sampler's coordinates). Constant fraction 0.45, 1 rad
#: phase: lambda ~ 150 in the corner of a static reference (D0_ref -> 0, v0 -> 0) against ~1 at the
#: mode; one divergence at 0.99 (step sizes 0.10-0.15), none at 0.999 (0.05-0.10)
RETRY_TARGET_ACCEPTS = (0.99, 0.999)
#: a rerun's warm-up, in units of ``warmup``: its metric and step size are adapted anew,
#: over longer windows (8 angles, constant fraction, 3 rad phase: with 3 x 300 warm-up iterations
#: both shards pass at 0.99, with 300 one kept a divergence and the other R-hat 1.0101)
RETRY_WARMUP_FACTOR = 3
#: at most this many extensions of a run by ``samples`` draws per chain while it misses the R-hat or
#: ESS criterion
MAX_EXTENSIONS = 3


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


def chain_method(n_points):
    """numpyro chain method of a shard of ``n_points`` (padded) points (VECTORIZED_MAX_POINTS)."""
    return "vectorized" if n_points <= VECTORIZED_MAX_POINTS else "sequential"


def shard_data(dataset, weights, points, pad_to, num_shards):
    """ShardData of ``points`` (a :class:`~heterodyne.cmc.pooling.PooledPoints`) padded with
    masked copies of its first point to length ``pad_to``; each point's noise sd from ``weights``
    (:meth:`~heterodyne.weighting.weights_file.AngleWeights.pair_sigma`)."""
    n = len(points)
    if n == 0 or pad_to < n:
        raise ValueError(f"shard has {n} points; pad_to={pad_to} must be >= that and > 0")
    pad = np.zeros(pad_to - n, dtype=np.int32)
    take = np.concatenate([np.arange(n, dtype=np.int32), pad])
    phi_index, idx1, idx2 = points.phi_index[take], points.idx1[take], points.idx2[take]
    c2 = np.asarray(dataset.c2, np.float64)[phi_index, idx1, idx2]
    point_sigma = weights.pair_sigma(idx1, idx2)[phi_index, np.arange(pad_to)]
    mask = np.arange(pad_to) < n
    weight = np.where(mask, 1.0 / point_sigma**2, 0.0)
    n_phi = len(dataset.phi)
    data_sums = np.stack([np.bincount(phi_index, weights=weight * c2**k, minlength=n_phi) for k in range(3)], axis=-1)
    return ShardData(
        t=np.asarray(dataset.t, np.float64),
        q=float(dataset.q),
        dt=float(dataset.dt),
        phi_unique=np.asarray(dataset.phi, np.float64),
        phi_index=phi_index,
        idx1=idx1,
        idx2=idx2,
        c2=c2,
        sigma=point_sigma,
        mask=mask,
        prior_power=1.0 / num_shards,
        rows=prepare_points(phi_index, idx1, idx2, len(dataset.t), n_phi),
        weight=weight,
        data_sums=data_sums,
        log_sigma_sum=float(np.sum(np.log(point_sigma[:n]))),
    )


def start_position(spec, sample_noise_scale):
    """Sampled coordinates (y_p, and log noise scale 0) of the NLSQ result, each value moved
    min(0.1 s_m, span / 4) inside its support where it sits on a bound (no coordinate maps a bound
    to a finite y)."""
    prior = spec.prior
    margin = np.minimum(0.1 * prior.stderr, 0.25 * (prior.high - prior.low))
    y = y_from_theta(np.clip(prior.centre, prior.low + margin, prior.high - margin), spec.coords)
    y = y[: spec.free_index.shape[0]]
    return np.append(y, 0.0) if sample_noise_scale else y


@jax.jit
def _conditional_scaling(y, data, spec):
    """(theta_p, mean (n_phi, 2), precision (n_phi, 2, 2)) of the offsets and contrasts at y."""
    y_physics, log_scale = split_noise(y, spec)
    theta = theta_from_y(y_physics, spec.physics_coords)[0]
    posterior = scaling_posterior(physics_params(theta, spec), log_scale, data, spec)
    return theta, posterior.mean, posterior.precision


#: draws per call of the batched conditional (a fixed shape: one compilation per shard shape)
CONDITIONAL_BATCH = 256


@jax.jit
def _conditional_scaling_batch(y, data, spec):
    return jax.lax.map(lambda v: _conditional_scaling(v, data, spec), y)


def _all_quantities(y, theta, offset_contrast, spec):
    """y (S, M [+1]) of every quantity from the sampled y (S, n_free [+1]), their theta_p and the
    (S, n_phi, 2) offsets and contrasts."""
    n = spec.free_index.shape[0]
    full = np.concatenate([theta, offset_contrast[..., 1], offset_contrast[..., 0]], axis=-1)
    return np.concatenate([y[:, :n], y_from_theta(full, spec.coords)[:, n:], y[:, n:]], axis=-1)


def _scaled_residuals(y_all, data, spec):
    theta, _ = theta_from_y(y_all, spec.coords)
    return jnp.where(data.mask, (model_c2(theta, data, spec) - data.c2) / data.sigma, 0.0)


def _prior_terms(y_all, data, spec):
    theta, log_jacobian = theta_from_y(y_all, spec.coords)
    return log_jacobian + data.prior_power * log_prior(theta, spec.prior)


@jax.jit
def _gauss_newton_precision(y_all, data, spec):
    """Gauss-Newton precision H (M, M) of all M quantities at y_all (module docstring)."""
    jac = jax.jacfwd(_scaled_residuals)(y_all, data, spec)
    prior_hessian = -jax.hessian(_prior_terms)(y_all, data, spec)
    eigenvalues, vectors = jnp.linalg.eigh(0.5 * (prior_hessian + prior_hessian.T))
    return jac.T @ jac + (vectors * jnp.maximum(eigenvalues, 0.0)) @ vectors.T


def sampled_precision(y, data, spec):
    """P: the Gauss-Newton precision of the sampled coordinates y (module docstring)."""
    theta, mean, _ = _conditional_scaling(jnp.asarray(y), data, spec)
    y_all = _all_quantities(np.asarray(y)[None], np.asarray(theta)[None], np.asarray(mean)[None], spec)[0]
    n, m = spec.free_index.shape[0], spec.prior.centre.shape[0]
    h = np.asarray(_gauss_newton_precision(jnp.asarray(y_all[:m]), data, spec))
    precision = h[:n, :n] - h[:n, n:] @ np.linalg.solve(h[n:, n:], h[n:, :n])
    if len(y) > n:  # log noise scale: Fisher information 2 n + its prior
        precision = np.pad(precision, (0, 1))
        precision[n, n] = 2.0 * float(np.sum(data.mask)) + data.prior_power
    return precision


_value_and_grad = jax.jit(jax.value_and_grad(log_density))


def shard_geometry(data, spec, sample_noise_scale):
    """Whitening (mode y_hat and L, module docstring) of one shard. The steps use P of the NLSQ
    result (the mode is near it), and L comes from P at the mode."""
    y = jnp.asarray(start_position(spec, sample_noise_scale))
    value, grad = _value_and_grad(y, data, spec)
    if not np.isfinite(float(value)):
        raise ValueError("the shard's log density is not finite at the NLSQ result")
    precision = sampled_precision(y, data, spec)
    for _ in range(MODE_ITERATIONS):
        step = jnp.asarray(np.linalg.solve(precision, np.asarray(grad)))
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
    covariance = np.linalg.inv(sampled_precision(y, data, spec))
    chol = np.linalg.cholesky(0.5 * (covariance + covariance.T))
    return Whitening(np.asarray(y), chol)


def conditional_draws(y, data, spec, rng):
    """y (S, M [+1]) of every quantity: the sampled y (S, n_free [+1]) and, per draw, offsets and
    contrasts drawn from their conditional posterior N(A^-1 b, A^-1) truncated to SCALING_BOUNDS
    with ``rng`` (a NumPy Generator): a draw outside is drawn again, and the few draws still
    outside after REDRAW_ROUNDS (little conditional mass inside the bounds) are drawn by Gibbs
    sampling of each angle's truncated Gaussian (:mod:`heterodyne.cmc.truncated_gaussian`)."""
    theta, mean, precision = rows_in_batches(_conditional_scaling_batch, y, CONDITIONAL_BATCH, data, spec)
    chol = np.linalg.cholesky(precision)  # A = R R^T, so R^-T e ~ N(0, A^-1)
    n, n_phi = spec.free_index.shape[0], mean.shape[1]
    prior = spec.prior
    low = np.stack([prior.low[n + n_phi : n + 2 * n_phi], prior.low[n : n + n_phi]], axis=-1)
    high = np.stack([prior.high[n + n_phi : n + 2 * n_phi], prior.high[n : n + n_phi]], axis=-1)
    draws = np.empty_like(mean)
    pending = np.ones(len(y), bool)
    for _ in range(REDRAW_ROUNDS):
        noise = rng.standard_normal(mean[pending].shape)[..., None]
        draws[pending] = mean[pending] + np.linalg.solve(np.swapaxes(chol[pending], -1, -2), noise)[..., 0]
        pending = ~np.all((draws > low) & (draws < high), axis=(1, 2))
        if not pending.any():
            break
    else:
        log.warning(
            "%d of %d draws: the conditional posterior of an offset or contrast lies mostly outside "
            "its bounds offset %s, contrast %s; drawn from the truncated Gaussian by Gibbs sampling",
            int(pending.sum()),
            len(y),
            SCALING_BOUNDS["offset"],
            SCALING_BOUNDS["contrast"],
        )
        draws[pending] = box_truncated_draws(mean[pending], precision[pending], low, high, rng)
    return _all_quantities(np.asarray(y), theta, draws, spec)


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
    params[:, free] = theta[:, : len(free)]
    theta[:, : len(free)] = canonical(params, float(spec.coords.t_mean), info.absorber)[:, free]
    m = theta.shape[1]
    y_canonical = flat.copy()
    y_canonical[:, :m] = y_from_theta(theta, spec.coords)
    draws = {name: theta[:, k].reshape(shape) for k, name in enumerate(info.names)}
    if flat.shape[1] > m:
        draws["noise_scale"] = np.exp(flat[:, m]).reshape(shape)
    return draws, y_canonical.reshape(y.shape)


def _final_draws(z, whitening, data, spec, info, seed, shard):
    """(canonical draws {name: (chains, draws)}, y (chains, draws, M)) of whitened draws z (chains,
    draws, D): offsets and contrasts drawn from their conditional with the generator of (seed,
    shard), so the same z always gives the same draws."""
    sampled = (whitening.y_hat + z @ whitening.chol.T).reshape(-1, z.shape[-1])
    y = conditional_draws(sampled, data, spec, np.random.default_rng([seed, shard]))
    return canonical_draws(y.reshape(*z.shape[:2], -1), spec, info)


def _sample_size_reasons(draws):
    """The R-hat and ESS flag reasons over every quantity of ``draws`` (physics, offsets and
    contrasts, noise scale), as the shard's diagnostics give them
    (:func:`heterodyne.cmc.diagnostics.convergence_flags`); empty when both criteria hold."""
    return convergence_flags({name: convergence(x) for name, x in draws.items()})["flag_reasons"]


#: extra fields of every NUTS draw that the diagnostics read
EXTRA_FIELDS = ("diverging", "num_steps", "energy", "adapt_state.step_size")


def _start_chains(key, z_start, data, spec, whitening, settings, target_accept, progress_bar):
    """Warm-up and ``settings.samples`` draws of every chain at ``target_accept``: the MCMC object
    and [(z (chains, draws, D), extra fields)]."""
    kernel = NUTS(
        whitened_model,
        adapt_mass_matrix=settings.adapt_mass_matrix,
        target_accept_prob=target_accept,
        dense_mass=settings.dense_mass,
        max_tree_depth=settings.max_tree_depth,
    )
    mcmc = MCMC(
        kernel,
        num_warmup=settings.warmup,
        num_samples=settings.samples,
        num_chains=settings.chains,
        chain_method=chain_method(data.mask.shape[0]),
        progress_bar=progress_bar,
        jit_model_args=True,
    )
    mcmc.run(key, data, spec, whitening, init_params={"z": z_start}, extra_fields=EXTRA_FIELDS)
    return mcmc, [_latest(mcmc)]


def _latest(mcmc):
    return np.asarray(mcmc.get_samples(group_by_chain=True)["z"]), mcmc.get_extra_fields(group_by_chain=True)


def _extend_chains(mcmc, parts, data, spec, info, whitening, settings, seed, shard, stop_at_divergence):
    """``parts`` extended by ``settings.samples`` draws per chain (the chains go on from their last
    state, adaptation frozen) while they miss the R-hat or ESS criterion of
    :mod:`heterodyne.cmc.diagnostics` (both improve with more draws of chains that mix), at most
    MAX_EXTENSIONS times, and (``stop_at_divergence``) no draw so far diverged; returns z (chains,
    draws, D), the extra fields, the canonical draws and y (:func:`_final_draws`), all of every
    part."""

    def joined():
        z = np.concatenate([part[0] for part in parts], axis=1)
        return z, *_final_draws(z, whitening, data, spec, info, seed, shard)

    final = None  # (z, draws, y) of the parts as they are, once computed
    for _ in range(MAX_EXTENSIONS):
        if stop_at_divergence and any(np.any(part[1]["diverging"]) for part in parts):
            break
        final = joined()
        reasons = _sample_size_reasons(final[1])
        if not reasons:
            break
        log.info(
            "shard %d: %s after %d draws per chain: %d more",
            shard,
            "; ".join(reasons),
            final[0].shape[1],
            settings.samples,
        )
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.run(mcmc.post_warmup_state.rng_key, data, spec, whitening, extra_fields=EXTRA_FIELDS)
        parts.append(_latest(mcmc))
        final = None
    z, draws, y = final if final is not None else joined()
    extra = {name: np.concatenate([np.asarray(part[1][name]) for part in parts], axis=1) for name in EXTRA_FIELDS}
    return z, extra, draws, y


def run_shard(data, spec, info, settings, seed, shard, progress_bar=True):
    """Run NUTS on one shard; the key is fold_in(PRNGKey(seed), shard), so equal seeds give equal
    draws. ``info`` (:class:`~heterodyne.cmc.model.SpecInfo`) names the sampled quantities.

    The chains are extended until the R-hat and ESS criteria hold (:func:`_extend_chains`). A run
    with divergent transitions is made again from the same start at the next higher target
    acceptance of RETRY_TARGET_ACCEPTS (a smaller step size: the standard cure where the curvature
    varies along the posterior) with RETRY_WARMUP_FACTOR times the warm-up; the last run made is
    kept, with its divergences, whatever they are."""
    start = time.perf_counter()
    whitening = shard_geometry(data, spec, settings.sample_noise_scale)
    dim = whitening.y_hat.shape[0]
    key = jax.random.fold_in(jax.random.PRNGKey(seed), shard)
    key, init_key = jax.random.split(key)
    z_start = jax.random.normal(init_key, (settings.chains, dim))
    if settings.chains == 1:  # numpyro takes one chain's start without the chain axis
        z_start = z_start[0]
    method = chain_method(data.mask.shape[0])
    log.info(
        "shard %d: %d points, %d sampled coordinates, %d chains (%s), %d warm-up + %d draws",
        shard,
        int(np.sum(data.mask)),
        dim,
        settings.chains,
        method,
        settings.warmup,
        settings.samples,
    )
    targets = [settings.target_accept] + [t for t in RETRY_TARGET_ACCEPTS if t > settings.target_accept]
    rerun_settings = settings._replace(warmup=RETRY_WARMUP_FACTOR * settings.warmup)
    for attempt, target_accept in enumerate(targets):
        run_settings = rerun_settings if attempt else settings
        mcmc, parts = _start_chains(key, z_start, data, spec, whitening, run_settings, target_accept, progress_bar)
        last = attempt == len(targets) - 1
        z, extra, draws, y = _extend_chains(
            mcmc, parts, data, spec, info, whitening, run_settings, seed, shard, stop_at_divergence=not last
        )
        divergences = int(np.sum(extra["diverging"]))
        if not divergences or last:
            break
        log.info(
            "shard %d: %d divergent transitions at target_accept %g: run again at %g with %d warm-up iterations",
            shard,
            divergences,
            target_accept,
            targets[attempt + 1],
            rerun_settings.warmup,
        )
    wall = time.perf_counter() - start
    diverging = np.asarray(extra["diverging"], bool)
    num_steps = np.asarray(extra["num_steps"], np.int64)
    log.info(
        "shard %d: done in %.1f s, %d draws per chain, %d divergent transitions, mean %.1f leapfrog steps per draw",
        shard,
        wall,
        z.shape[1],
        int(diverging.sum()),
        float(num_steps.mean()),
    )
    return ShardDraws(
        draws=draws,
        unconstrained=y,
        diverging=diverging,
        num_steps=num_steps,
        energy=np.asarray(extra["energy"], np.float64),
        step_size=np.asarray(extra["adapt_state.step_size"], np.float64)[:, -1],
        max_tree_depth=settings.max_tree_depth,
        target_accept=target_accept,
        wall_time_s=wall,
        chain_method=method,
    )
