"""Log density of one Consensus Monte Carlo shard, in the shared sampling coordinates y.

Sampled quantities theta_m (m = 0..M-1): the free physics parameters (canonical order, those not
marked ``"fixed"`` in nlsq.json), then contrast_a and offset_a of every angle a; optionally the log
noise scale lambda as coordinate M. theta = theta(y) is the bijection of
:mod:`heterodyne.cmc.coordinates`. The shard's log density (up to a constant) is

    log p(y) = log L_shard(theta) + (1/K) sum_m log pi_m(theta_m) + log |d theta / d y|,

with the prior raised to the power 1/K (K shards: the product of the K subposteriors carries the
prior once) and the Gaussian likelihood over the shard's pooled points k

    log L = sum_k [ -(c2_model,k - c2_k)^2 / (2 sigma_k^2) - log sigma_k ],

sigma_k = sigma_phi(k) (per-angle noise from the weighting step, c2 units), times exp(lambda)
when the noise scale is sampled (lambda ~ N(0, LOG_NOISE_SCALE_PRIOR_SD^2), also raised to 1/K).
The likelihood's sum of squares is :func:`heterodyne.core.pooled_likelihood.pooled_chi2`.
The prior pi_m is a normal of sd p_m centred on the NLSQ value c_m, truncated to the bounds, or
uniform on [c_m - p_m, c_m + p_m] within the bounds; p_m = width * s_m (``width_unit: stderr``,
s_m the NLSQ standard error) or width (``absolute``). Bounds: ``nlsq.bounds`` or the registry for
physics parameters, SCALING_BOUNDS for contrast/offset; the support of the uniform prior is also
the support of the coordinates.
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from heterodyne.cmc.coordinates import Coordinates, build_coordinates, theta_from_y
from heterodyne.core.jax_backend import compute_c2_heterodyne_pooled
from heterodyne.core.parameters import PARAMETER_NAMES, PARAMETERS, SCALING_BOUNDS
from heterodyne.core.pooled_likelihood import PooledRows, pooled_chi2
from heterodyne.core.symmetries import exchange_absorber
from heterodyne.errors import InputError

#: sd of the N(0, sd) prior on the log noise scale lambda (only when the noise scale is sampled)
LOG_NOISE_SCALE_PRIOR_SD = 1.0


class ShardData(NamedTuple):
    """Arrays of one shard (all traced arguments, so shards of equal size share one compiled
    sampler). ``mask`` is False on padding points."""

    t: np.ndarray            # (N,) absolute time grid [s]
    q: float                 # [1/A]
    dt: float                # [s]
    phi_unique: np.ndarray   # (n_phi,) [deg]
    phi_index: np.ndarray    # (n_points,) int
    idx1: np.ndarray         # (n_points,) int, t1 index
    idx2: np.ndarray         # (n_points,) int, t2 index (> idx1)
    c2: np.ndarray           # (n_points,) observed c2
    sigma: np.ndarray        # (n_points,) noise sd of each point [c2 units]
    mask: np.ndarray         # (n_points,) bool
    prior_power: float       # 1 / K
    rows: PooledRows         # the points as table columns of the fast likelihood


class Prior(NamedTuple):
    """Prior of the M quantities, arrays (M,) in physical units."""

    centre: np.ndarray       # c_m, NLSQ value
    stderr: np.ndarray       # s_m, NLSQ standard error
    low: np.ndarray          # support
    high: np.ndarray
    normal: np.ndarray       # bool: truncated normal (True) or uniform (False)
    sd: np.ndarray           # p_m: normal sd or uniform half-width


class ModelSpec(NamedTuple):
    """What the log density needs besides the data (a JAX pytree)."""

    coords: Coordinates
    prior: Prior
    base_params: np.ndarray  # (14,) NLSQ values of all physics parameters (fixed ones stay)
    free_index: np.ndarray   # (n_free,) canonical indices of the free physics parameters


class SpecInfo(NamedTuple):
    """Static facts of a ModelSpec: quantity names and the component-exchange absorber (see
    :func:`heterodyne.core.symmetries.exchange_absorber`)."""

    names: list
    free_names: list
    absorber: str | None


def _prior_rule(prior_config, name):
    return prior_config["parameters"].get(name, prior_config["default"])


def build_model_spec(nlsq, prior_config, t, q, n_phi, num_shards, bounds=None, source="nlsq.json"):
    """ModelSpec and SpecInfo from an nlsq.json record, the ``cmc.prior`` config, the dataset's time
    grid ``t`` (N,) [s] and ``q`` [1/A], and K. ``bounds`` ({name: [lower, upper]}, the ``nlsq.bounds`` config)
    overrides registry bounds, so NLSQ and CMC share one support. Raises InputError (naming
    ``source``) for a free quantity without a usable standard error or outside its bounds."""
    bounds = bounds or {}
    try:
        entries = nlsq["parameters"]
        base = np.array([float(entries[name]["value"]) for name in PARAMETER_NAMES])
        fixed = [bool(entries[name]["fixed"]) for name in PARAMETER_NAMES]
        scaling = {kind: (np.asarray(nlsq[kind], float), np.asarray(nlsq[f"{kind}_stderr"], float))
                   for kind in ("contrast", "offset")}
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{source}: missing or malformed key {err} (expected the nlsq.json layout "
                         f"of `heterodyne fit-nlsq`); re-run fit-nlsq") from None
    for kind, (values, errors) in scaling.items():
        if values.shape != (n_phi,) or errors.shape != (n_phi,):
            raise InputError(f"{source}: '{kind}' and '{kind}_stderr' must hold {n_phi} values (one "
                             f"per angle of the dataset); re-run fit-nlsq on this dataset")

    free_index = np.array([k for k in range(len(PARAMETERS)) if not fixed[k]], dtype=np.int32)
    rows = []  # (name, rule key, centre, stderr, lower, upper)
    for k in free_index:
        p = PARAMETERS[k]
        lower, upper = bounds.get(p.name, (p.lower, p.upper))
        rows.append((p.name, p.name, base[k], entries[p.name]["stderr"], lower, upper))
    for kind in ("contrast", "offset"):
        values, errors = scaling[kind]
        lower, upper = SCALING_BOUNDS[kind]
        rows += [(f"{kind}_{a}", kind, values[a], errors[a], lower, upper) for a in range(n_phi)]

    columns = {key: [] for key in Prior._fields}
    for name, rule_key, centre, stderr, lower, upper in rows:
        stderr = float("nan") if stderr is None else float(stderr)
        if not (np.isfinite(stderr) and stderr > 0):
            raise InputError(f"{source}: free quantity '{name}' has standard error {stderr}; CMC needs a "
                             f"finite positive NLSQ standard error to scale it. Fix the NLSQ fit "
                             f"or mark '{name}' fixed in the config's nlsq section")
        if not lower <= centre <= upper:
            raise InputError(f"{source}: NLSQ value {centre} of '{name}' lies outside its bounds "
                             f"[{lower}, {upper}]; re-run fit-nlsq")
        rule = _prior_rule(prior_config, rule_key)
        sd = rule["width"] * stderr if rule["width_unit"] == "stderr" else rule["width"]
        normal = rule["kind"] == "truncated-normal"
        if not normal:
            lower, upper = max(lower, centre - sd), min(upper, centre + sd)
        for key, value in zip(Prior._fields, (centre, stderr, lower, upper, normal, sd), strict=True):
            columns[key].append(value)
    prior = Prior(**{key: np.asarray(v, dtype=bool if key == "normal" else np.float64)
                     for key, v in columns.items()})
    names = [name for name, *_ in rows]
    rule_keys = [key for _, key, *_ in rows]
    free_names = [PARAMETER_NAMES[k] for k in free_index]
    fixed_values = {name: base[k] for k, name in enumerate(PARAMETER_NAMES) if fixed[k]}
    absorber = exchange_absorber(free_names, base)
    coords = build_coordinates(names, rule_keys, prior.centre, prior.stderr, prior.low, prior.high,
                               fixed_values, t, q, num_shards, absorber)
    spec = ModelSpec(coords=coords, prior=prior, base_params=base, free_index=free_index)
    return spec, SpecInfo(names, free_names, absorber)


def log_prior(theta, prior):
    """sum_m log pi_m(theta_m) up to a constant; -inf outside the support."""
    inside = jnp.all((theta >= prior.low) & (theta <= prior.high), axis=-1)
    normal = -0.5 * ((theta - prior.centre) / prior.sd) ** 2
    value = jnp.sum(jnp.where(prior.normal, normal, 0.0), axis=-1)
    return jnp.where(inside, value, -jnp.inf)


def physics_of(theta, spec, n_phi):
    """(params (14,), contrast (n_phi,), offset (n_phi,)) from theta (M,)."""
    n_free = spec.free_index.shape[0]
    params = jnp.asarray(spec.base_params).at[spec.free_index].set(theta[:n_free])
    return params, theta[n_free:n_free + n_phi], theta[n_free + n_phi:n_free + 2 * n_phi]


def model_c2(theta, data, spec):
    """c2 of the model at the shard's points, (n_points,) (forward-mode differentiable: the
    Gauss-Newton Jacobian of the shard geometry)."""
    params, contrast, offset = physics_of(theta, spec, data.phi_unique.shape[0])
    return compute_c2_heterodyne_pooled(params, data.t, data.q, data.dt, data.idx1, data.idx2,
                                        data.phi_index, data.phi_unique, contrast, offset)


def split_noise(y, spec):
    """(y of the M quantities, log noise scale lambda or 0.0)."""
    m = spec.prior.centre.shape[0]
    return y[:m], (y[m] if y.shape[0] > m else 0.0)


def log_density(y, data, spec):
    """log p(y) of the shard (module docstring); y has M or M + 1 (noise scale) entries.
    Reverse-mode differentiable only (the likelihood is :func:`heterodyne.core.pooled_likelihood.pooled_chi2`)."""
    y_theta, log_scale = split_noise(y, spec)
    theta, log_jacobian = theta_from_y(y_theta, spec.coords)
    params, contrast, offset = physics_of(theta, spec, data.phi_unique.shape[0])
    weight = jnp.where(data.mask, 1.0 / data.sigma**2, 0.0)
    chi2 = pooled_chi2(params, contrast, offset, data.t, data.q, data.dt, data.phi_unique, data.rows,
                       data.c2, weight)
    log_sigma = jnp.sum(jnp.where(data.mask, jnp.log(data.sigma), 0.0)) + jnp.sum(data.mask) * log_scale
    log_like = -0.5 * chi2 * jnp.exp(-2.0 * log_scale) - log_sigma
    log_noise_prior = -0.5 * (log_scale / LOG_NOISE_SCALE_PRIOR_SD) ** 2
    return log_like + log_jacobian + data.prior_power * (log_prior(theta, spec.prior) + log_noise_prior)
