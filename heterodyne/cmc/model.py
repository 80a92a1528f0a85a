"""NumPyro model of one Consensus Monte Carlo shard, standardised around the NLSQ result.

Sampled quantities theta_m (m = 0..M-1) are the free physics parameters (canonical order, those
not marked ``"fixed"`` in nlsq.json) followed by contrast_a and offset_a of every angle a. Each is
written as

    theta_m = c_m + s_m z_m,      c_m = NLSQ value, s_m = NLSQ standard error  (units of theta_m),

so z_m is dimensionless and O(1) under the posterior. z_m is confined to its support
[lo_m, hi_m] = ([lower_m, upper_m] - c_m) / s_m (parameter bounds: the ``nlsq.bounds`` config or
the registry; narrowed to [-w_m, w_m] for a uniform prior) by a map from an unconstrained u_m
that is the identity to first order at the anchor a_m (= 0, or nudged inside the support when the
NLSQ value sits on a bound):

    z = lo + (hi - lo) sigmoid(v),   v = g + u / h,   g = logit((a - lo) / (hi - lo)),
    h = (hi - lo) sigmoid(g) (1 - sigmoid(g))     =>   z(0) = a,  dz/du(0) = 1,
    log dz/du = log(hi - lo) + log sigmoid(v) + log sigmoid(-v) - log h.

NUTS samples u, so it sees O(1) scales. The shard's log density (up to a constant) is

    log p(u) = sum_m log dz_m/du_m + (1/K) sum_m log pi_m(z_m) + log L_shard(theta),

with the prior raised to the power 1/K (K shards: the product of the K subposteriors carries the
prior once) and the Gaussian likelihood over the shard's pooled points k

    log L = sum_k [ -(c2_model,k - c2_k)^2 / (2 sigma_k^2) - log sigma_k - log(2 pi) / 2 ],

sigma_k = sigma_phi(k) (per-angle noise from the weighting step, c2 units), times exp(lambda)
when the noise scale is sampled (lambda ~ N(0, 1), also raised to 1/K). The prior pi_m of z_m is
a normal of sd w_m truncated to [lo_m, hi_m] (centred on the NLSQ value) or uniform on it;
w_m = width (``width_unit: stderr``) or width / s_m (``width_unit: absolute``).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import ndtr
from numpyro.distributions import constraints

from heterodyne.core.jax_backend import compute_c2_heterodyne_pooled
from heterodyne.core.parameters import PARAMETER_NAMES, PARAMETERS, SCALING_BOUNDS
from heterodyne.errors import InputError

#: sd of the N(0, sd) prior on the log noise scale lambda (only when the noise scale is sampled)
LOG_NOISE_SCALE_PRIOR_SD = 1.0


class ShardData(NamedTuple):
    """Arrays of one shard (all traced model arguments, so shards of equal size share one
    compiled sampler). ``mask`` is False on padding points."""

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


class ModelSpec(NamedTuple):
    """Standardisation and prior of the M sampled quantities (arrays of shape (M,) unless noted)."""

    centre: np.ndarray       # c_m, NLSQ value
    scale: np.ndarray        # s_m, NLSQ standard error
    z_low: np.ndarray        # lo_m
    z_high: np.ndarray       # hi_m
    z_anchor: np.ndarray     # a_m, value of z at u = 0
    normal_prior: np.ndarray  # bool: truncated normal (True) or uniform (False)
    z_width: np.ndarray      # w_m
    base_params: np.ndarray  # (14,) NLSQ values of all physics parameters (fixed ones stay)
    free_index: np.ndarray   # (n_free,) canonical indices of the free physics parameters


def _prior_rule(prior_config, name):
    return prior_config["parameters"].get(name, prior_config["default"])


def build_model_spec(nlsq, prior_config, n_phi, bounds=None, source="nlsq.json"):
    """ModelSpec and the list of sampled names from an nlsq.json record and the ``cmc.prior``
    config. ``bounds`` ({name: [lower, upper]}, the ``nlsq.bounds`` config) overrides registry
    bounds of physics parameters, so NLSQ and CMC share one support. Raises InputError (naming
    ``source``) for a free quantity without a usable standard error or with an NLSQ value outside
    its bounds."""
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

    columns = {key: [] for key in ModelSpec._fields[:7]}
    for name, rule_key, centre, stderr, lower, upper in rows:
        stderr = float("nan") if stderr is None else float(stderr)
        if not (np.isfinite(stderr) and stderr > 0):
            raise InputError(f"{source}: free quantity '{name}' has standard error {stderr}; CMC needs a "
                             f"finite positive NLSQ standard error to standardise it. Fix the NLSQ fit "
                             f"or mark '{name}' fixed in the config's nlsq section")
        if not lower <= centre <= upper:
            raise InputError(f"{source}: NLSQ value {centre} of '{name}' lies outside its bounds "
                             f"[{lower}, {upper}]; re-run fit-nlsq")
        rule = _prior_rule(prior_config, rule_key)
        width = rule["width"] if rule["width_unit"] == "stderr" else rule["width"] / stderr
        z_low, z_high = (lower - centre) / stderr, (upper - centre) / stderr
        normal = rule["kind"] == "truncated-normal"
        if not normal:
            z_low, z_high = max(z_low, -width), min(z_high, width)
        margin = min(0.1, 0.25 * (z_high - z_low))
        columns["centre"].append(centre)
        columns["scale"].append(stderr)
        columns["z_low"].append(z_low)
        columns["z_high"].append(z_high)
        columns["z_anchor"].append(float(np.clip(0.0, z_low + margin, z_high - margin)))
        columns["normal_prior"].append(normal)
        columns["z_width"].append(width)
    arrays = {key: np.asarray(v, dtype=bool if key == "normal_prior" else np.float64)
              for key, v in columns.items()}
    spec = ModelSpec(**arrays, base_params=base, free_index=free_index)
    return spec, [name for name, *_ in rows]


def bounded_from_unconstrained(u, spec):
    """z(u) on (lo, hi) with z(0) = anchor, dz/du(0) = 1, and log dz/du (module docstring)."""
    span = spec.z_high - spec.z_low
    g = jax.scipy.special.logit((spec.z_anchor - spec.z_low) / span)
    h = span * jax.nn.sigmoid(g) * jax.nn.sigmoid(-g)
    v = g + u / h
    z = spec.z_low + span * jax.nn.sigmoid(v)
    log_jacobian = jnp.log(span) + jax.nn.log_sigmoid(v) + jax.nn.log_sigmoid(-v) - jnp.log(h)
    return z, log_jacobian


def log_prior_z(z, spec):
    """log pi_m(z_m) (normalised on [lo_m, hi_m]): truncated normal of sd w_m or uniform."""
    w = spec.z_width
    normal = (-0.5 * (z / w) ** 2 - jnp.log(w) - 0.5 * jnp.log(2 * jnp.pi)
              - jnp.log(ndtr(spec.z_high / w) - ndtr(spec.z_low / w)))
    uniform = -jnp.log(spec.z_high - spec.z_low)
    return jnp.where(spec.normal_prior, normal, uniform)


def shard_model(data, spec, sample_noise_scale=False):
    """NumPyro model of one shard: sites ``u`` (M,), deterministic ``theta`` (M,) in physical
    units, optional ``log_noise_scale``, and the observed ``c2`` (see module docstring)."""
    n_free = spec.free_index.shape[0]
    n_phi = data.phi_unique.shape[0]
    u = numpyro.sample("u", dist.ImproperUniform(constraints.real, (), spec.centre.shape))
    z, log_jacobian = bounded_from_unconstrained(u, spec)
    numpyro.factor("jacobian", jnp.sum(log_jacobian))
    numpyro.factor("prior", data.prior_power * jnp.sum(log_prior_z(z, spec)))
    theta = numpyro.deterministic("theta", spec.centre + spec.scale * z)

    params = jnp.asarray(spec.base_params).at[spec.free_index].set(theta[:n_free])
    contrast = theta[n_free:n_free + n_phi]
    offset = theta[n_free + n_phi:n_free + 2 * n_phi]
    c2_model = compute_c2_heterodyne_pooled(params, data.t, data.q, data.dt, data.idx1, data.idx2,
                                            data.phi_index, data.phi_unique, contrast, offset)
    sigma = data.sigma
    if sample_noise_scale:
        log_scale = numpyro.sample("log_noise_scale", dist.ImproperUniform(constraints.real, (), ()))
        numpyro.factor("noise_prior", data.prior_power
                       * dist.Normal(0.0, LOG_NOISE_SCALE_PRIOR_SD).log_prob(log_scale))
        sigma = sigma * numpyro.deterministic("noise_scale", jnp.exp(log_scale))
    numpyro.sample("c2", dist.Normal(c2_model, sigma).mask(data.mask), obs=data.c2)
