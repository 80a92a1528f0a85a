"""Sampling coordinates of Consensus Monte Carlo: a bijection between unconstrained y (R^M) and the
M sampled physical quantities theta, the same for every shard of a dataset (so the shards'
draws are combined in y, and no combined draw leaves the bounds).

Two steps, both fixed by the NLSQ result (value c_m, standard error s_m) and K:

1. Power laws about the map's mean time t_m [s]. An amplitude (D0_n, v0) is sampled as its
   rate at t_m, eta = D0 t_m^alpha (A^2/s) or v0 t_m^beta (A/s); then

       theta_m = eta_m t_m^(-e_m),     log |d theta / d eta| = -sum_m e_m log t_m,

   e_m the exponent (alpha_n or beta: sampled or fixed) of amplitude m, 0 for other quantities.
   D0 t^alpha written as J(t_m) (t / t_m)^alpha has no D0-alpha ridge.
2. eta_m = g_m(y_m), elementwise, with the shard-level width w_m = sqrt(K) s_m (eta units) and
   the distances d_lo, d_hi of c_m from eta's bounds in units of w_m:

   * ``LOG``      eta = exp(y): a positive scale (D0 amplitude, contrast) clearly away from 0
                  (d_lo >= LOG_MIN_DISTANCE, upper bound far); straightens multiplicative ridges.
   * ``IDENTITY`` eta = y: both bounds further than FAR_DISTANCE.
   * ``LOWER``    eta = lo + w softplus(y / w): linear well above lo, a soft wall at lo.
   * ``UPPER``    eta = hi - w softplus(-y / w): likewise below hi.
   * ``LOGIT``    eta = lo + (hi - lo) sigmoid(4 y / (hi - lo)): both bounds near (slope 1 at
                  the centre).

   A value near 0 is never logged (a static reference or a small velocity phase would make a
   funnel), and velocity amplitudes are linear: c2 is even in v (see
   :mod:`heterodyne.core.symmetries`), so draws are folded to v0 >= 0 after sampling.
"""

from typing import NamedTuple

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

    kind: np.ndarray          # int: IDENTITY, LOG, LOWER, UPPER, LOGIT
    eta_low: np.ndarray       # lower bound of eta
    eta_high: np.ndarray      # upper bound of eta
    width: np.ndarray         # w_m (eta units)
    exponent_index: np.ndarray  # int: index of the sampled exponent of amplitude m, else -1
    exponent_fixed: np.ndarray  # the fixed exponent of amplitude m (0 for non-amplitudes)
    t_mean: np.ndarray        # 0-d, t_m [s]


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


def build_coordinates(names, rule_keys, centre, stderr, lower, upper, fixed_values, t_mean, num_shards):
    """Coordinates of the sampled quantities ``names`` (NLSQ ``centre`` and ``stderr``, bounds
    ``lower``/``upper`` in physical units, all (M,)); ``fixed_values`` {name: value} holds the
    fixed physics parameters (for fixed exponents); ``t_mean`` [s] the map's mean time."""
    position = {name: m for m, name in enumerate(names)}
    columns = {key: [] for key in Coordinates._fields[:-1]}
    for m, name in enumerate(names):
        exponent = POWER_LAWS.get(name)
        index = position.get(exponent, -1) if exponent else -1
        fixed = fixed_values.get(exponent, 0.0) if exponent and index < 0 else 0.0
        e0 = centre[index] if index >= 0 else fixed
        factor = t_mean ** e0
        low, high = lower[m] * factor, upper[m] * factor
        width = np.sqrt(num_shards) * stderr[m] * factor
        columns["kind"].append(choose_kind(rule_keys[m], centre[m] * factor, width, low, high))
        columns["eta_low"].append(low)
        columns["eta_high"].append(high)
        columns["width"].append(width)
        columns["exponent_index"].append(index)
        columns["exponent_fixed"].append(fixed)
    arrays = {key: np.asarray(v, np.int32 if key in ("kind", "exponent_index") else np.float64)
              for key, v in columns.items()}
    return Coordinates(**arrays, t_mean=np.float64(t_mean))


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
        [jnp.exp(jnp.where(kind == LOG, y, 0.0)), lo + w * softplus(y / w), hi - w * softplus(-y / w),
         lo + span * sigmoid(y / jnp.where(kind == LOGIT, logit_w, 1.0))], y)
    log_jac = jnp.select(
        [kind == LOG, kind == LOWER, kind == UPPER, kind == LOGIT],
        [y, log_sigmoid(y / w), log_sigmoid(-y / w),
         jnp.log(jnp.where(kind == LOGIT, span / logit_w, 1.0)) + log_sigmoid(y / jnp.where(kind == LOGIT, logit_w, 1.0))
         + log_sigmoid(-y / jnp.where(kind == LOGIT, logit_w, 1.0))], 0.0)
    return eta, log_jac


def theta_from_y(y, coords):
    """theta (..., M) in physical units and log |d theta / d y| (...,) (module docstring)."""
    eta, log_jac = eta_from_y(y, coords)
    exponents = _exponents(eta, coords)
    log_t = jnp.log(coords.t_mean)
    theta = eta * jnp.exp(-exponents * log_t)
    return theta, jnp.sum(log_jac, axis=-1) - jnp.sum(exponents, axis=-1) * log_t


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
        candidates = [np.log(eta), w * np.log(np.expm1((eta - lo) / w)), -w * np.log(np.expm1((hi - eta) / w)),
                      span / 4.0 * np.log(unit / (1.0 - unit))]
        y = np.select([kind == LOG, kind == LOWER, kind == UPPER, kind == LOGIT], candidates, eta)
    return y
