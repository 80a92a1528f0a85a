"""Sampling coordinates of Consensus Monte Carlo: a bijection between unconstrained y (R^M) and the
M sampled physical quantities theta, the same for every shard of a dataset (so the shards'
draws are combined in y, and no combined draw leaves the bounds).

Three steps, fixed by the NLSQ result (value c_m, standard error s_m) and K:

1. Power laws about the map's mean time t_m [s]. An amplitude (D0_n, v0) is sampled as its
   rate at t_m, eta = D0 t_m^alpha (A^2/s) or v0 t_m^beta (A/s); then

       theta_m = eta_m t_m^(-e_m),     log |d theta / d eta| = -sum_m e_m log t_m,

   e_m the exponent (alpha_n or beta: sampled or fixed) of amplitude m, 0 for other quantities.
   D0 t^alpha written as J(t_m) (t / t_m)^alpha has no D0-alpha ridge.
2. eta_m = g_m(y_m), elementwise, with the shard-level width w_m = sqrt(K) s_m (eta units) and
   the distances d_lo, d_hi of c_m from eta's bounds in units of w_m:

   * ``LOG``      eta = exp(y): a positive scale (D0 amplitude, contrast) clearly away from 0
                  (d_lo >= LOG_MIN_DISTANCE, upper bound far); straightens multiplicative ridges.
                  Not for a D0 whose D_offset is sampled too (J(t_m) = eta + D_offset makes an
                  additive ridge, straight in eta).
   * ``IDENTITY`` eta = y: both bounds further than FAR_DISTANCE.
   * ``LOWER``    eta = lo + w softplus(y / w): linear well above lo, a soft wall at lo. Also the
                  velocity that carries the sign convention (sampled on eta >= 0) near 0: its
                  posterior there has a density > 0 at eta = 0, so the tail in y decays as
                  e^(y / w), about the bulk's own width. (Sampling eta^2 = s softplus(y / s)
                  instead, which keeps the small-phase ridge eta^2 ~ rates straight, leaves a
                  tail e^(y / 2s) several bulk widths long: on a 24 000-point shard with v0 = 4
                  +- 2 A/s it halved the tail ESS of v0, 364 against 728 from 4 x 500 draws.)
   * ``UPPER``    eta = hi - w softplus(-y / w): likewise below hi.
   * ``LOGIT``    eta = lo + (hi - lo) sigmoid(4 y / (hi - lo)): both bounds near (slope 1 at
                  the centre).

3. Mixture moments (only where reference and sample can be exchanged: a constant fraction and
   mirrored free parameters, see :mod:`heterodyne.core.symmetries`). For phases q v t << 1 the
   bracket is the square of g1(tau) = a r^(tau / lag) + b s^(tau / lag), r = e^{-q^2 J_r lag / 2},
   s = e^{-q^2 J_s lag / 2}, with weights a = x_r^2 / (x_r^2 + x_s^2), b = 1 - a: a two-point
   distribution on [0, 1] (atoms r > s, J = J_n(t_m) [A^2/s]) whose moments are the samples
   h_k = g1(k lag) = a r^k + b s^k. The data fix h_1..h_3 far better than (J_r, J_s, x_s), which
   lie on a curved ridge (|r| ~ 0.99) that no constant metric follows. The block samples the
   logits of the canonical moments p_1, p_2, p_3 in (0, 1) of that distribution (every p in
   (0, 1)^3 is a two-point distribution, so the block has no constraints):

       z_1 = p_1, z_2 = (1 - p_1) p_2, z_3 = (1 - p_2) p_3,
       h_1 = z_1, h_2 = z_1 (z_1 + z_2), h_3 = z_1 ((z_1 + z_2)^2 + z_2 z_3),

   then r, s are the roots of x^2 - P x - C with P = (h_1 h_2 - h_3) / (h_1^2 - h_2) and
   C = (h_1 h_3 - h_2^2) / (h_1^2 - h_2), a = (h_1 - s) / (r - s), J = -2 ln(root) / (q^2 lag),
   x_s = sqrt(b) / (sqrt(a) + sqrt(b)). r > s builds in the convention J_r(t_m) <= J_s(t_m).
   The amplitudes follow as eta = J - D_offset and the fraction parameter that is free (f0 or
   f3) as x_s minus the fixed one; log |d eta / d y| of this block comes from its 3 x 3 Jacobian.
   lag = min(1 / (q^2 k_1), T / 3) with k_1 = a J_r + b J_s at the NLSQ result (T the map's
   span): the mean decay reaches 1/2 within the first third of the map.

   A value near 0 is never logged (a static reference or a small velocity phase would make a
   funnel), and velocity amplitudes are linear. c2 is even in v (see
   :mod:`heterodyne.core.symmetries`): the velocity that carries the sign has the lower bound 0
   (``LOWER`` near it, ``IDENTITY`` far from it), and draws are mapped to the canonical
   representative after sampling.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.nn import log_sigmoid, sigmoid, softplus

IDENTITY, LOG, LOWER, UPPER, LOGIT = range(5)

#: d_lo (in shard widths) from which a positive scale is sampled as its logarithm
LOG_MIN_DISTANCE = 3.0
#: distance (in shard widths) beyond which a bound does not shape the coordinate
FAR_DISTANCE = 8.0
#: amplitude -> its exponent, for the power laws about t_m
POWER_LAWS = {"D0_ref": "alpha_ref", "D0_sample": "alpha_sample", "v0": "beta"}
#: quantities (by rule key) that are positive scales and may be sampled in log
POSITIVE_SCALES = ("D0_ref", "D0_sample", "contrast")


class Coordinates(NamedTuple):
    """Arrays (M,) of the map y -> theta (module docstring); a JAX pytree."""

    kind: np.ndarray  # int: IDENTITY, LOG, LOWER, UPPER, LOGIT
    eta_low: np.ndarray  # lower bound of eta
    eta_high: np.ndarray  # upper bound of eta
    width: np.ndarray  # w_m (eta units)
    exponent_index: np.ndarray  # int: index of the sampled exponent of amplitude m, else -1
    exponent_fixed: np.ndarray  # the fixed exponent of amplitude m (0 for non-amplitudes)
    mixture: np.ndarray  # int (3,): indices of D0_ref, D0_sample and the free fraction
    # parameter in the mixture-moment block, or -1 (no block)
    offset_index: np.ndarray  # int (2,): indices of sampled D_offset_ref/_sample, or -1
    offset_fixed: np.ndarray  # (2,): their fixed values [A^2/s]
    fraction_fixed: np.ndarray  # 0-d: the fixed one of f0, f3 (x_s = free + fixed)
    q: np.ndarray  # 0-d [1/A]
    lag: np.ndarray  # 0-d, tau [s] of the block's samples h_k = g1(k tau)
    t_mean: np.ndarray  # 0-d, t_m [s]


def restrict(coords, n):
    """Coordinates of the first ``n`` quantities (the physics parameters: the mixture block and the
    exponents refer only to them)."""
    return coords._replace(**{field: getattr(coords, field)[:n] for field in Coordinates._fields[:6]})


def choose_kind(rule_key, centre, width, low, high):
    """Transform kind of one coordinate (module docstring); centre, bounds and width in eta units."""
    d_lo, d_hi = (centre - low) / width, (high - centre) / width
    if rule_key in POSITIVE_SCALES and low == 0 and d_lo >= LOG_MIN_DISTANCE and d_hi > FAR_DISTANCE:
        return LOG
    if d_lo > FAR_DISTANCE and d_hi > FAR_DISTANCE:
        return IDENTITY
    if d_hi > FAR_DISTANCE:
        return LOWER
    if d_lo > FAR_DISTANCE:
        return UPPER
    return LOGIT


def build_coordinates(names, rule_keys, centre, stderr, lower, upper, fixed_values, t, q, num_shards, absorber=None):
    """Coordinates of the sampled quantities ``names`` (NLSQ ``centre`` and ``stderr``, bounds
    ``lower``/``upper`` in physical units, all (M,)); ``fixed_values`` {name: value} holds the
    fixed physics parameters (for fixed exponents and offsets); ``t`` (N,) the time grid [s], ``q``
    [1/A]; ``absorber`` ("f0", "f3" or None, :func:`heterodyne.core.symmetries.exchange_absorber`)
    switches the mixture-moment block on."""
    t_mean = float(np.mean(t))
    position = {name: m for m, name in enumerate(names)}
    block = absorber in ("f0", "f3") and {"D0_ref", "D0_sample"} <= set(position)
    mixture = [position["D0_ref"], position["D0_sample"], position[absorber]] if block else [-1, -1, -1]
    offsets = [f"D_offset_{n}" for n in ("ref", "sample")]
    partner = {"f0": "f3", "f3": "f0"}.get(absorber, "f3")
    extra = dict(
        mixture=np.asarray(mixture, np.int32),
        offset_index=np.asarray([position.get(o, -1) for o in offsets], np.int32),
        offset_fixed=np.asarray([fixed_values.get(o, 0.0) for o in offsets], np.float64),
        fraction_fixed=np.float64(fixed_values.get(partner, 0.0)),
        q=np.float64(q),
        lag=np.float64(1.0),
    )
    columns = {key: [] for key in Coordinates._fields[:6]}
    for m, name in enumerate(names):
        exponent = POWER_LAWS.get(name)
        index = position.get(exponent, -1) if exponent else -1
        fixed = fixed_values.get(exponent, 0.0) if exponent and index < 0 else 0.0
        e0 = centre[index] if index >= 0 else fixed
        factor = t_mean**e0
        low, high = lower[m] * factor, upper[m] * factor
        width = np.sqrt(num_shards) * stderr[m] * factor
        # J(t_m) = eta + D_offset: with the offset sampled too, the ridge eta + D_offset = const is
        # straight in eta, not in log eta
        key = "" if name.startswith("D0_") and name.replace("D0_", "D_offset_") in position else rule_keys[m]
        kind = IDENTITY if m in mixture else choose_kind(key, centre[m] * factor, width, low, high)
        columns["kind"].append(kind)
        columns["eta_low"].append(low)
        columns["eta_high"].append(high)
        columns["width"].append(width)
        columns["exponent_index"].append(index)
        columns["exponent_fixed"].append(fixed)
    arrays = {
        key: np.asarray(v, np.int32 if key in ("kind", "exponent_index") else np.float64) for key, v in columns.items()
    }
    coords = Coordinates(**arrays, **extra, t_mean=np.float64(t_mean))
    if not block:
        return coords
    # tau: where the mean decay q^2 k1 tau / 2 reaches 1/2, within the first third of the map
    exponents = np.where(
        coords.exponent_index >= 0, np.take(centre, np.maximum(coords.exponent_index, 0)), coords.exponent_fixed
    )
    eta = np.asarray(centre) * t_mean**exponents
    offsets_now = _block_offsets(eta, coords, np)
    j_r, j_s = eta[mixture[0]] + offsets_now[0], eta[mixture[1]] + offsets_now[1]
    x_s = eta[mixture[2]] + coords.fraction_fixed
    a = (1.0 - x_s) ** 2 / ((1.0 - x_s) ** 2 + x_s**2)
    k1 = a * j_r + (1.0 - a) * j_s
    return coords._replace(lag=np.float64(min(1.0 / (q * q * k1), (t[-1] - t[0]) / 3.0)))


def _exponents(theta_or_eta, coords):
    """e_m: the exponent of amplitude m (exponents are not amplitudes, so eta = theta for them)."""
    sampled = jnp.take(theta_or_eta, jnp.maximum(coords.exponent_index, 0), axis=-1)
    return jnp.where(coords.exponent_index >= 0, sampled, coords.exponent_fixed)


def eta_from_y(y, coords):
    """eta = g(y) and log |d eta / d y| elementwise, (..., M) each."""
    lo, hi, w = coords.eta_low, coords.eta_high, coords.width
    span = hi - lo
    logit_w = span / 4.0
    kind = coords.kind
    # each branch is evaluated everywhere: keep the unused ones finite
    eta = jnp.select(
        [kind == LOG, kind == LOWER, kind == UPPER, kind == LOGIT],
        [
            jnp.exp(jnp.where(kind == LOG, y, 0.0)),
            lo + w * softplus(y / w),
            hi - w * softplus(-y / w),
            lo + span * sigmoid(y / jnp.where(kind == LOGIT, logit_w, 1.0)),
        ],
        y,
    )
    log_jac = jnp.select(
        [kind == LOG, kind == LOWER, kind == UPPER, kind == LOGIT],
        [
            y,
            log_sigmoid(y / w),
            log_sigmoid(-y / w),
            jnp.log(jnp.where(kind == LOGIT, span / logit_w, 1.0))
            + log_sigmoid(y / jnp.where(kind == LOGIT, logit_w, 1.0))
            + log_sigmoid(-y / jnp.where(kind == LOGIT, logit_w, 1.0)),
        ],
        0.0,
    )
    return eta, log_jac


def _mixture_from_samples(u, offsets, fraction_fixed, q, lag, xp=jnp):
    """(eta_ref, eta_sample, eta_fraction) from u = logit of the canonical moments (p1, p2, p3)
    of the samples h_k = g1(k tau) (module docstring, step 3); ``offsets`` (D_offset_ref,
    D_offset_sample) [A^2/s], q [1/A], lag tau [s]."""
    p1, p2, p3 = (1.0 / (1.0 + xp.exp(-u[..., k])) for k in range(3))
    z1, z2, z3 = p1, (1.0 - p1) * p2, (1.0 - p2) * p3
    h1, h2, h3 = z1, z1 * (z1 + z2), z1 * ((z1 + z2) ** 2 + z2 * z3)
    det = h1**2 - h2
    p = (h1 * h2 - h3) / det
    c = (h1 * h3 - h2**2) / det
    root = xp.sqrt(p**2 + 4.0 * c)
    r, s = 0.5 * (p + root), 0.5 * (p - root)
    a = (h1 - s) / (r - s)
    b = 1.0 - a
    rate = -2.0 / (q * q * lag)
    x_s = xp.sqrt(b) / (xp.sqrt(a) + xp.sqrt(b))
    return xp.stack([rate * xp.log(r) - offsets[0], rate * xp.log(s) - offsets[1], x_s - fraction_fixed], axis=-1)


def _samples_from_mixture(eta, offsets, fraction_fixed, q, lag):
    """Inverse of :func:`_mixture_from_samples` (NumPy, (..., 3) -> (..., 3))."""
    j_r, j_s = eta[..., 0] + offsets[0], eta[..., 1] + offsets[1]
    x_s = eta[..., 2] + fraction_fixed
    a = (1.0 - x_s) ** 2 / ((1.0 - x_s) ** 2 + x_s**2)
    r, s = np.exp(-0.5 * q * q * j_r * lag), np.exp(-0.5 * q * q * j_s * lag)
    h1, h2, h3 = (a * r**k + (1.0 - a) * s**k for k in (1, 2, 3))
    p1 = h1
    p2 = (h2 - h1**2) / (h1 * (1.0 - h1))
    z1, z2 = p1, (1.0 - p1) * p2
    p3 = (h3 / z1 - (z1 + z2) ** 2) / z2 / (1.0 - p2)
    return np.stack([np.log(p / (1.0 - p)) for p in (p1, p2, p3)], axis=-1)


def _block_offsets(values, coords, xp=jnp):
    """(D_offset_ref, D_offset_sample): sampled (from ``values``, where eta = theta) or fixed."""
    index = coords.offset_index
    taken = xp.take(values, xp.maximum(index, 0), axis=-1)
    return [xp.where(index[n] >= 0, taken[..., n], coords.offset_fixed[n]) for n in range(2)]


def theta_from_y(y, coords):
    """theta (M,) in physical units and log |d theta / d y| (0-d) of one position y (M,)
    (module docstring)."""
    eta, log_jac = eta_from_y(y, coords)
    log_jac = jnp.sum(log_jac)
    active = coords.mixture[0] >= 0
    index = jnp.maximum(coords.mixture, 0)
    u = jnp.where(active, eta[index], 0.0)  # the block's coordinates are IDENTITY: eta = y
    offsets = _block_offsets(eta, coords)

    def block(samples):
        return _mixture_from_samples(samples, offsets, coords.fraction_fixed, coords.q, coords.lag)

    block_log_det = jnp.linalg.slogdet(jax.jacfwd(block)(u))[1]
    eta = jnp.where(active, eta.at[index].set(block(u)), eta)
    log_jac += jnp.where(active, block_log_det, 0.0)
    exponents = _exponents(eta, coords)
    log_t = jnp.log(coords.t_mean)
    theta = eta * jnp.exp(-exponents * log_t)
    return theta, log_jac - jnp.sum(exponents) * log_t


@jax.jit
def _theta_draws(y, coords):
    return jax.vmap(lambda v: theta_from_y(v, coords)[0])(y)


#: rows per call of the jitted map (a fixed shape: one compilation per number of quantities)
DRAWS_BATCH = 1024


def rows_in_batches(function, rows, batch, *args):
    """function(rows_batch, *args) over ``rows`` (S, ...) in batches of ``batch`` rows (the last
    padded with copies of the final row), so a jitted ``function`` compiles once whatever S;
    its outputs (arrays or a tuple of arrays, batch-leading) are concatenated to S rows (NumPy)."""
    rows = np.asarray(rows)
    padded = np.concatenate([rows, np.repeat(rows[-1:], -len(rows) % batch, axis=0)])
    parts = [function(jnp.asarray(padded[k : k + batch]), *args) for k in range(0, len(padded), batch)]
    return jax.tree.map(lambda *pieces: np.concatenate([np.asarray(p) for p in pieces])[: len(rows)], *parts)


def theta_draws(y, coords):
    """theta (S, M) of draws y (S, D >= M) (NumPy in and out; columns beyond M are ignored)."""
    return rows_in_batches(_theta_draws, np.asarray(y)[:, : coords.kind.shape[0]], DRAWS_BATCH, coords)


def _log_expm1(x):
    """log(e^x - 1) for x > 0, without overflow (the inverse of softplus)."""
    return x + np.log1p(-np.exp(-x))


def y_from_theta(theta, coords):
    """Inverse of :func:`theta_from_y` (NumPy, (..., M)); theta must lie inside its bounds."""
    theta = np.asarray(theta, np.float64)
    kind = np.asarray(coords.kind)
    lo, hi, w = (np.asarray(a) for a in (coords.eta_low, coords.eta_high, coords.width))
    index = np.asarray(coords.exponent_index)
    exponents = np.where(index >= 0, np.take(theta, np.maximum(index, 0), axis=-1), coords.exponent_fixed)
    eta = theta * np.asarray(coords.t_mean) ** exponents
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        span = hi - lo
        unit = np.clip((eta - lo) / np.where(span > 0, span, 1.0), 1e-300, 1 - 1e-16)
        candidates = [
            np.log(eta),
            w * _log_expm1((eta - lo) / w),
            -w * _log_expm1((hi - eta) / w),
            span / 4.0 * np.log(unit / (1.0 - unit)),
        ]
        y = np.select([kind == LOG, kind == LOWER, kind == UPPER, kind == LOGIT], candidates, eta)
        mixture = np.asarray(coords.mixture)
        if mixture[0] >= 0:
            offsets = _block_offsets(eta, coords, np)
            y[..., mixture] = _samples_from_mixture(
                eta[..., mixture], offsets, coords.fraction_fixed, coords.q, coords.lag
            )
    return y
