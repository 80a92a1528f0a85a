"""Log density of one Consensus Monte Carlo shard, in the shared sampling coordinates y.

Quantities theta_m (m = 0..M-1): the free physics parameters (canonical order, those not marked
``"fixed"`` in nlsq.json), then contrast_a and offset_a of every angle a; optionally the log noise
scale lambda. theta = theta(y) is the bijection of :mod:`heterodyne.cmc.coordinates`.

The model c2 = offset_a + contrast_a B(phi_a; physics) is linear in (offset_a, contrast_a), and
their prior is normal, so they are integrated out exactly and NUTS samples only the physics
parameters (and lambda): y_p (n_free,), then draws beta_a = (offset_a, contrast_a) from their
Gaussian conditional posterior given each draw. With the shard's pooled points k of angle a,
weights w_k = mask_k / (sigma_k e^lambda)^2 (sigma_k = sigma_phi(k), per-angle noise from the
weighting step, c2 units), the sums of :mod:`heterodyne.core.pooled_likelihood` and the prior
N(mu, p^2) of each of offset_a and contrast_a raised to the power 1/K (K shards: the product of
the K subposteriors carries the prior once; pi = 1 / (K p^2)):

    A_a = [[sum w + pi_o, S1], [S1, S2 + pi_c]],   b_a = (sum w c2 + pi_o mu_o, S3 + pi_c mu_c),
    beta_a | physics ~ N(A_a^-1 b_a, A_a^-1),
    log p(y_p) = sum_a [ -(sum w c2^2 + pi_o mu_o^2 + pi_c mu_c^2 - b_a^T A_a^-1 b_a) / 2
                         - log det A_a / 2 ] - sum_k log(sigma_k e^lambda)
                 + (1/K) sum_m log pi_m(theta_m) + log |d theta / d y_p|  (+ const),

the sum over m running over the physics parameters (and lambda ~ N(0, LOG_NOISE_SCALE_PRIOR_SD^2),
also raised to 1/K). This is the Gaussian likelihood sum_k [-(c2_model,k - c2_k)^2 w_k / 2 +
log sqrt(w_k)] integrated over beta: exact except for the truncation of the offset/contrast prior
to SCALING_BOUNDS, which lies many posterior widths away (a conditional draw outside them is
drawn again, see :mod:`heterodyne.cmc.sampling`).
The prior pi_m of a physics parameter is a normal of sd p_m centred on the NLSQ value c_m,
truncated to the bounds, or uniform on [c_m - p_m, c_m + p_m] within the bounds; p_m = width *
s_m (``width_unit: stderr``, s_m the NLSQ standard error) or width (``absolute``); offset and
contrast need the normal kind. Bounds: ``nlsq.bounds`` or the registry for physics parameters,
SCALING_BOUNDS for contrast/offset; the support of the uniform prior is also the support of the
coordinates. The velocity parameter that carries the sign (:func:`heterodyne.core.symmetries.sign_carrier`)
is sampled on v >= 0: c2 is even in v, so this is the folded posterior, without mirror modes.
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from heterodyne.cmc.coordinates import Coordinates, build_coordinates, restrict, theta_from_y
from heterodyne.core.c2 import c2_pooled
from heterodyne.core.parameters import PARAMETER_NAMES, PARAMETERS, SCALING_BOUNDS
from heterodyne.core.pooled_likelihood import PooledRows, pooled_sums
from heterodyne.core.symmetries import exchange_absorber, sign_carrier
from heterodyne.errors import InputError

#: sd of the N(0, sd) prior on the log noise scale lambda (only when the noise scale is sampled)
LOG_NOISE_SCALE_PRIOR_SD = 1.0


class ShardData(NamedTuple):
    """Arrays of one shard (all traced arguments, so shards of equal size share one compiled
    sampler). ``mask`` is False on padding points."""

    t: np.ndarray  # (N,) absolute time grid [s]
    q: float  # [1/A]
    dt: float  # [s]
    phi_unique: np.ndarray  # (n_phi,) [deg]
    phi_index: np.ndarray  # (n_points,) int
    idx1: np.ndarray  # (n_points,) int, t1 index
    idx2: np.ndarray  # (n_points,) int, t2 index (> idx1)
    c2: np.ndarray  # (n_points,) observed c2
    sigma: np.ndarray  # (n_points,) noise sd of each point [c2 units]
    mask: np.ndarray  # (n_points,) bool
    prior_power: float  # 1 / K
    rows: PooledRows  # the points as table columns of the fast likelihood
    weight: np.ndarray  # (n_points,) w = mask / sigma^2
    data_sums: np.ndarray  # (n_phi, 3): sum w, sum w c2, sum w c2^2 per angle
    log_sigma_sum: float  # sum of log sigma over the real points


class Prior(NamedTuple):
    """Prior of the M quantities, arrays (M,) in physical units."""

    centre: np.ndarray  # c_m, NLSQ value
    stderr: np.ndarray  # s_m, NLSQ standard error
    low: np.ndarray  # support
    high: np.ndarray
    normal: np.ndarray  # bool: truncated normal (True) or uniform (False)
    sd: np.ndarray  # p_m: normal sd or uniform half-width


class ModelSpec(NamedTuple):
    """What the log density needs besides the data (a JAX pytree)."""

    coords: Coordinates  # of all M quantities (the shared coordinates of the draws)
    physics_coords: Coordinates  # of the free physics parameters only (the sampled ones)
    prior: Prior
    base_params: np.ndarray  # (14,) NLSQ values of all physics parameters (fixed ones stay)
    free_index: np.ndarray  # (n_free,) canonical indices of the free physics parameters


class SpecInfo(NamedTuple):
    """Static facts of a ModelSpec: quantity names and the component-exchange absorber (see
    :func:`heterodyne.core.symmetries.exchange_absorber`)."""

    names: list
    free_names: list
    absorber: str | None


def prior_width(prior_config, rule_key, stderr):
    """(p, normal) of the ``cmc.prior`` rule of ``rule_key`` for NLSQ standard error ``stderr``:
    p = width * stderr (``width_unit: stderr``) or width (``absolute``), the sd of a truncated
    normal (normal True) or the half-width of a uniform prior (normal False)."""
    rule = prior_config["parameters"].get(rule_key, prior_config["default"])
    sd = rule["width"] * stderr if rule["width_unit"] == "stderr" else rule["width"]
    return sd, rule["kind"] == "truncated-normal"


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
        scaling = {
            kind: (np.asarray(nlsq[kind], float), np.asarray(nlsq[f"{kind}_stderr"], float))
            for kind in ("contrast", "offset")
        }
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"{source}: missing or malformed key {err} (expected the nlsq.json layout "
            f"of `heterodyne fit-nlsq`); re-run fit-nlsq"
        ) from None
    for kind, (values, errors) in scaling.items():
        if values.shape != (n_phi,) or errors.shape != (n_phi,):
            raise InputError(
                f"{source}: '{kind}' and '{kind}_stderr' must hold {n_phi} values (one "
                f"per angle of the dataset); re-run fit-nlsq on this dataset"
            )

    free_index = np.array([k for k in range(len(PARAMETERS)) if not fixed[k]], dtype=np.int32)
    free_names = [PARAMETER_NAMES[k] for k in free_index]
    signed = sign_carrier(free_names, base)
    rows = []  # (name, rule key, centre, stderr, lower, upper)
    for k in free_index:
        p = PARAMETERS[k]
        lower, upper = bounds.get(p.name, (p.lower, p.upper))
        if p.name == signed:  # the NLSQ result already follows the convention v >= 0
            lower = max(lower, 0.0)
        rows.append((p.name, p.name, base[k], entries[p.name]["stderr"], lower, upper))
    for kind in ("contrast", "offset"):
        values, errors = scaling[kind]
        lower, upper = SCALING_BOUNDS[kind]
        rows += [(f"{kind}_{a}", kind, values[a], errors[a], lower, upper) for a in range(n_phi)]

    columns = {key: [] for key in Prior._fields}
    for name, rule_key, centre, stderr, lower, upper in rows:
        stderr = float("nan") if stderr is None else float(stderr)
        if not (np.isfinite(stderr) and stderr > 0):
            raise InputError(
                f"{source}: free quantity '{name}' has standard error {stderr}; CMC needs a "
                f"finite positive NLSQ standard error to scale it. Fix the NLSQ fit "
                f"or mark '{name}' fixed in the config's nlsq section"
            )
        if not lower <= centre <= upper:
            raise InputError(
                f"{source}: NLSQ value {centre} of '{name}' lies outside its bounds [{lower}, {upper}]; re-run fit-nlsq"
            )
        sd, normal = prior_width(prior_config, rule_key, stderr)
        if rule_key in SCALING_BOUNDS and not normal:
            raise InputError(
                f"cmc.prior: '{rule_key}' has prior kind 'uniform'; CMC integrates "
                f"contrast and offset out exactly, which needs a normal prior: set kind "
                f"'truncated-normal' for '{rule_key}' (or for the default)"
            )
        if not normal:
            lower, upper = max(lower, centre - sd), min(upper, centre + sd)
        for key, value in zip(Prior._fields, (centre, stderr, lower, upper, normal, sd), strict=True):
            columns[key].append(value)
    prior = Prior(**{key: np.asarray(v, dtype=bool if key == "normal" else np.float64) for key, v in columns.items()})
    names = [name for name, *_ in rows]
    rule_keys = [key for _, key, *_ in rows]
    fixed_values = {name: base[k] for k, name in enumerate(PARAMETER_NAMES) if fixed[k]}
    absorber = exchange_absorber(free_names, base)
    coords = build_coordinates(
        names,
        rule_keys,
        prior.centre,
        prior.stderr,
        prior.low,
        prior.high,
        fixed_values,
        t,
        q,
        num_shards,
        absorber,
    )
    spec = ModelSpec(
        coords=coords,
        physics_coords=restrict(coords, len(free_index)),
        prior=prior,
        base_params=base,
        free_index=free_index,
    )
    return spec, SpecInfo(names, free_names, absorber)


def config_model_spec(nlsq, config, dataset, num_shards, source):
    """:func:`build_model_spec` of one q bin's ``dataset`` with the ``cmc.prior`` and ``nlsq.bounds``
    of the run ``config``; ``source`` names the nlsq.json in errors."""
    return build_model_spec(
        nlsq,
        config["cmc"]["prior"],
        dataset.t,
        dataset.q,
        len(dataset.phi),
        num_shards,
        bounds=config["nlsq"]["bounds"],
        source=source,
    )


def log_prior(theta, prior):
    """sum_m log pi_m(theta_m) up to a constant; -inf outside the support."""
    inside = jnp.all((theta >= prior.low) & (theta <= prior.high), axis=-1)
    normal = -0.5 * ((theta - prior.centre) / prior.sd) ** 2
    value = jnp.sum(jnp.where(prior.normal, normal, 0.0), axis=-1)
    return jnp.where(inside, value, -jnp.inf)


def physics_params(theta_physics, spec):
    """All 14 physics parameters with the free ones set to ``theta_physics`` (n_free,)."""
    return jnp.asarray(spec.base_params).at[spec.free_index].set(theta_physics)


def physics_of(theta, spec, n_phi):
    """(params (14,), contrast (n_phi,), offset (n_phi,)) from theta (M,)."""
    n_free = spec.free_index.shape[0]
    return (
        physics_params(theta[:n_free], spec),
        theta[n_free : n_free + n_phi],
        theta[n_free + n_phi : n_free + 2 * n_phi],
    )


def model_c2(theta, data, spec):
    """c2 of the model at the shard's points, (n_points,) (forward-mode differentiable: the
    Gauss-Newton Jacobian of the shard geometry)."""
    params, contrast, offset = physics_of(theta, spec, data.phi_unique.shape[0])
    return c2_pooled(
        params, data.t, data.q, data.dt, data.phi_unique, data.phi_index, data.idx1, data.idx2, contrast, offset
    )


def split_noise(y, spec):
    """(y of the sampled physics parameters, log noise scale lambda or 0.0)."""
    n = spec.free_index.shape[0]
    return y[:n], (y[n] if y.shape[0] > n else 0.0)


class ScalingPosterior(NamedTuple):
    """Gaussian conditional posterior of (offset_a, contrast_a) given the physics (module
    docstring): ``mean`` (n_phi, 2), ``precision`` A_a (n_phi, 2, 2), and ``log_marginal``, the
    log-likelihood integrated over them (0-d, without the sum of log sigma)."""

    mean: jnp.ndarray
    precision: jnp.ndarray
    log_marginal: jnp.ndarray


def scaling_posterior(params, log_scale, data, spec):
    """ScalingPosterior at physics ``params`` (14,) and log noise scale ``log_scale``."""
    n_phi = data.phi_unique.shape[0]
    n_free = spec.free_index.shape[0]
    s1, s2, s3 = pooled_sums(params, data.t, data.q, data.dt, data.phi_unique, data.rows, data.c2, data.weight).T
    s0, sy, syy = data.data_sums.T
    scale = jnp.exp(-2.0 * log_scale)
    prior = spec.prior
    mu_c, mu_o = prior.centre[n_free : n_free + n_phi], prior.centre[n_free + n_phi : n_free + 2 * n_phi]
    pi_c = data.prior_power / prior.sd[n_free : n_free + n_phi] ** 2
    pi_o = data.prior_power / prior.sd[n_free + n_phi : n_free + 2 * n_phi] ** 2
    a00, a01, a11 = scale * s0 + pi_o, scale * s1, scale * s2 + pi_c
    b0, b1 = scale * sy + pi_o * mu_o, scale * s3 + pi_c * mu_c
    det = a00 * a11 - a01**2
    mean = jnp.stack([(a11 * b0 - a01 * b1) / det, (a00 * b1 - a01 * b0) / det], axis=-1)
    quadratic = scale * syy + pi_o * mu_o**2 + pi_c * mu_c**2 - (b0 * mean[:, 0] + b1 * mean[:, 1])
    precision = jnp.stack([jnp.stack([a00, a01], -1), jnp.stack([a01, a11], -1)], -2)
    return ScalingPosterior(mean, precision, jnp.sum(-0.5 * quadratic - 0.5 * jnp.log(det)))


def log_density(y, data, spec):
    """log p(y_p) of the shard (module docstring); y holds the sampled physics coordinates, then
    the log noise scale when it is sampled. Reverse-mode differentiable only (the sums are
    :func:`heterodyne.core.pooled_likelihood.pooled_sums`)."""
    y_physics, log_scale = split_noise(y, spec)
    theta, log_jacobian = theta_from_y(y_physics, spec.physics_coords)
    marginal = scaling_posterior(physics_params(theta, spec), log_scale, data, spec).log_marginal
    log_sigma = data.log_sigma_sum + jnp.sum(data.mask) * log_scale
    n_free = spec.free_index.shape[0]
    physics_prior = Prior(*(field[:n_free] for field in spec.prior))
    log_noise_prior = -0.5 * (log_scale / LOG_NOISE_SCALE_PRIOR_SD) ** 2
    return marginal - log_sigma + log_jacobian + data.prior_power * (log_prior(theta, physics_prior) + log_noise_prior)
