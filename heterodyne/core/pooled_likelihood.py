"""Weighted sum of squares of the pooled model with a hand-written gradient (the CMC likelihood).

For the pooled points k = (a_k, i_k, j_k) of a shard (angle phi_unique[a_k] [deg], times
t[i_k] <= t[j_k] [s]), observed c2_k and weights w_k = mask_k / sigma_k^2 (sigma in c2 units)

    chi2 = sum_k w_k (c2_model,k - c2_k)^2   (dimensionless),
    c2_model,k = offset_a + contrast_a B_ij(phi_a),

with the physics of :mod:`heterodyne.core.physics_kernel` (the same C_ref, C_sample, C_v, x_s and
phase factor; c2_model equals ``compute_c2_heterodyne_pooled`` to rounding). With the fraction
weights a_r, a_s, a_c (:func:`~heterodyne.core.physics_kernel.fraction_weights`) and the phase
theta_a = q cos(phi_a + phi0) C_v [rad] of each (angle, time), the bracket reads

    B_ij = a_r,i a_r,j E_r + a_s,i a_s,j E_s
           + 2 a_c,i a_c,j X (cos theta_i cos theta_j + sin theta_i sin theta_j),
    e_n = exp(-q^2 (C_n,j - C_n,i) / 2)  (n = r, s),   E_r = e_r^2,  E_s = e_s^2,  X = e_r e_s,

because J >= 0 makes C non-decreasing, so C_n,j - C_n,i = |I_n| >= 0 for i <= j (q in 1/A, C_n
in A^2): every exponent is <= 0 and nothing overflows. A point costs 2 exp and no cos. The product
form of cos(theta_j - theta_i) has an absolute error ~1e-16 |theta|, the size of the rounding of
q cos(.) (C_v,j - C_v,i) in the reference path.

Everything a point needs is gathered from two per-time tables, column a N + i (N = len(t)):

    early (7 rows) = (C_r, C_s, contrast_a a_r, contrast_a a_s, 2 contrast_a a_c cos theta_a,
                      2 contrast_a a_c sin theta_a, offset_a)
    late  (6 rows) = (C_r, C_s, a_r, a_s, a_c cos theta_a, a_c sin theta_a)

With u = early[:, a N + i] and v = late[:, a N + j]:

    T_r = u2 v2 E_r,  T_s = u3 v3 E_s,  T_c = (u4 v4 + u5 v5) X,  c2_model = u6 + T_r + T_s + T_c,
    r = c2_model - c2,  g = 2 w r,  h = q^2 / 2,
    d chi2 / d u = g (h (2 T_r + T_c), h (2 T_s + T_c), v2 E_r, v3 E_s, v4 X, v5 X, 1),
    d chi2 / d v = g (-h (2 T_r + T_c), -h (2 T_s + T_c), u2 E_r, u3 E_s, u4 X, u5 X),
    d chi2 / d q^2 = -sum_k g [(2 T_r + T_c)(v0 - u0) + (2 T_s + T_c)(v1 - u1)] / 2,
    d chi2 / d c2 = -g,   d chi2 / d w = r^2.

The per-point gradients are scatter-added onto the table columns, and ordinary autodiff carries
them (O(n_phi N) work) to params, contrast, offset, t, dt, q and phi_unique. chi2 is a scalar, so
the forward pass of the custom VJP computes the value and the table gradients together and the
backward pass only scales them. Points are processed in chunks of ``chunk`` (``lax.scan``) so the
per-point intermediates stay in cache. Reverse mode only (jax.grad, value_and_grad, vjp; not
jvp, jacfwd or hessian). A sampled noise scale s may enter through ``weight`` (its gradient is
exact) or, cheaper, as chi2 / s^2 with fixed weights.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.core import physics_kernel as pk

#: points per chunk of the scan: of 1024 to 16384, 4096 timed fastest on one core (2048 and 8192
#: within ~10%); smaller chunks pay the per-iteration overhead, larger ones spill the cache
CHUNK = 4096
#: width of the per-point gradient rows that are scatter-added (8 doubles = one cache line)
ROW_WIDTH = 8


class PooledRows(NamedTuple):
    """Table columns of the pooled points, int32 (n_points,): ``early`` = a N + i, ``late`` = a N + j."""

    early: np.ndarray
    late: np.ndarray


def prepare_points(phi_index, idx1, idx2, n_times, n_phi):
    """PooledRows of the points (phi_index[k], idx1[k], idx2[k]), checked: 1-D of equal length,
    0 <= phi_index < n_phi and 0 <= idx1 <= idx2 < n_times. The order is kept, so c2 and weight
    are passed to :func:`pooled_chi2` as they are."""
    phi_index, idx1, idx2 = (np.asarray(a) for a in (phi_index, idx1, idx2))
    if not (phi_index.ndim == idx1.ndim == idx2.ndim == 1 and phi_index.shape == idx1.shape == idx2.shape):
        raise ValueError(f"phi_index, idx1, idx2 must be 1-D of equal length, got {phi_index.shape}, "
                         f"{idx1.shape}, {idx2.shape}")
    if phi_index.size == 0:
        raise ValueError("a shard needs at least one point")
    if n_phi * n_times >= 2**31:
        raise ValueError(f"n_phi * n_times = {n_phi * n_times} does not fit int32 indices")
    if phi_index.min() < 0 or phi_index.max() >= n_phi:
        raise ValueError(f"phi_index must lie in [0, {n_phi - 1}]")
    if idx1.min() < 0 or idx2.max() >= n_times:
        raise ValueError(f"time indices must lie in [0, {n_times - 1}]")
    if np.any(idx1 > idx2):
        raise ValueError("every point needs idx1 <= idx2 (upper triangle)")
    base = phi_index.astype(np.int64) * n_times
    return PooledRows((base + idx1).astype(np.int32), (base + idx2).astype(np.int32))


def point_tables(params, contrast, offset, t, q, dt, phi_unique):
    """The tables ``early`` (7, n_phi N) and ``late`` (6, n_phi N) of the module docstring."""
    c_ref, c_s, c_v, x_s = pk.grid_quantities(params, t, dt)
    a_r, a_s, a_c = pk.fraction_weights(x_s)
    theta = pk.phase_factor(q, phi_unique, params[13])[:, None] * c_v[None, :]
    cos_t, sin_t = a_c * jnp.cos(theta), a_c * jnp.sin(theta)
    per_angle = partial(jnp.broadcast_to, shape=theta.shape)
    scale = contrast[:, None]
    times = [per_angle(c_ref), per_angle(c_s)]
    early = jnp.stack(times + [scale * a_r, scale * a_s, 2.0 * scale * cos_t, 2.0 * scale * sin_t,
                               per_angle(offset[:, None])])
    late = jnp.stack(times + [per_angle(a_r), per_angle(a_s), cos_t, sin_t])
    return early.reshape(7, -1), late.reshape(6, -1)


def _chunked(step, carry, arrays, chunk):
    """Fold ``carry, y = step(carry, chunk_of_arrays)`` over consecutive chunks of ``chunk``
    points (a scan over the full chunks, then the tail); returns the carry and the concatenated y
    (None when ``step`` returns None)."""
    n = arrays[0].shape[0]
    full = n - n % chunk
    ys = []
    if full:
        carry, y = jax.lax.scan(step, carry, tuple(a[:full].reshape(-1, chunk) for a in arrays))
        ys.append(None if y is None else y.reshape(full))
    if n > full:
        carry, y = step(carry, tuple(a[full:] for a in arrays))
        ys.append(y)
    return carry, (None if ys[0] is None else jnp.concatenate(ys))


def _point_terms(early, late, q2, cols_i, cols_j, c2):
    """Gathered u, v (lists of rows), v0 - u0, v1 - u1, e_r, e_s, T_r, T_s, T_c and the residual."""
    # materialised, contiguous gathers: the arithmetic below then vectorises
    u, v = jax.lax.optimization_barrier(([row[cols_i] for row in early], [row[cols_j] for row in late]))
    d_r, d_s = v[0] - u[0], v[1] - u[1]
    e_r, e_s = jnp.exp(-0.5 * q2 * d_r), jnp.exp(-0.5 * q2 * d_s)
    t_r, t_s = u[2] * v[2] * (e_r * e_r), u[3] * v[3] * (e_s * e_s)
    t_c = (u[4] * v[4] + u[5] * v[5]) * (e_r * e_s)
    return u, v, d_r, d_s, e_r, e_s, t_r, t_s, t_c, u[6] + t_r + t_s + t_c - c2


def _residuals(early, late, q2, points, c2, chunk):
    """r_k = c2_model,k - c2_k, (n_points,)."""
    def step(carry, x):
        return carry, _point_terms(early, late, q2, *x)[-1]
    return _chunked(step, None, (*points, c2), chunk)[1]


def _value_and_table_grads(early, late, q2, points, c2, weight, chunk):
    """chi2 and its gradients with respect to the two tables and q^2 (module docstring)."""
    def step(carry, x):
        value, d_early, d_late, d_q2 = carry
        cols_i, cols_j, c2_k, w_k = x
        u, v, d_r, d_s, e_r, e_s, t_r, t_s, t_c, resid = _point_terms(early, late, q2, cols_i, cols_j, c2_k)
        g = 2.0 * w_k * resid
        # materialised once, shared by the 13 gradient rows below
        g, g_r, g_s, g_big_r, g_big_s, g_cross = jax.lax.optimization_barrier(
            (g, g * (2.0 * t_r + t_c), g * (2.0 * t_s + t_c),
             g * (e_r * e_r), g * (e_s * e_s), g * (e_r * e_s)))
        h = 0.5 * q2
        zero = jnp.zeros_like(g)  # pads the rows to ROW_WIDTH
        grad_u = jnp.stack([h * g_r, h * g_s, v[2] * g_big_r, v[3] * g_big_s,
                            v[4] * g_cross, v[5] * g_cross, g, zero])
        grad_v = jnp.stack([-h * g_r, -h * g_s, u[2] * g_big_r, u[3] * g_big_s,
                            u[4] * g_cross, u[5] * g_cross, zero, zero])
        return (value + jnp.sum(w_k * resid * resid), d_early.at[cols_i].add(grad_u.T),
                d_late.at[cols_j].add(grad_v.T), d_q2 - 0.5 * jnp.sum(g_r * d_r + g_s * d_s)), None
    zero = jnp.zeros((), early.dtype)
    init = (zero, jnp.zeros((early.shape[1], ROW_WIDTH), early.dtype),
            jnp.zeros((late.shape[1], ROW_WIDTH), late.dtype), zero)
    value, d_early, d_late, d_q2 = _chunked(step, init, (*points, c2, weight), chunk)[0]
    return value, d_early[:, :7].T, d_late[:, :6].T, d_q2


@partial(jax.custom_vjp, nondiff_argnums=(6,))
def table_chi2(early, late, q2, points, c2, weight, chunk):
    """chi2 from the tables of :func:`point_tables`, q2 = q^2 [1/A^2] and the PooledRows ``points``."""
    # materialised tables: XLA would otherwise fuse their O(N) computation into every gather
    early, late = jax.lax.optimization_barrier((early, late))
    resid = _residuals(early, late, q2, points, c2, chunk)
    return jnp.sum(weight * resid * resid)


def _table_chi2_fwd(early, late, q2, points, c2, weight, chunk):
    early, late = jax.lax.optimization_barrier((early, late))
    value, d_early, d_late, d_q2 = _value_and_table_grads(early, late, q2, points, c2, weight, chunk)
    return value, (d_early, d_late, d_q2, early, late, q2, points, c2, weight)


def _table_chi2_bwd(chunk, saved, ct):
    d_early, d_late, d_q2, early, late, q2, points, c2, weight = saved
    # recomputed; XLA drops it when no gradient with respect to c2 or weight is used
    resid = _residuals(early, late, q2, points, c2, chunk)
    return ct * d_early, ct * d_late, ct * d_q2, None, -2.0 * ct * weight * resid, ct * resid * resid


table_chi2.defvjp(_table_chi2_fwd, _table_chi2_bwd)


@partial(jax.jit, static_argnames=("chunk",))
def pooled_chi2(params, contrast, offset, t, q, dt, phi_unique, points, c2, weight, *, chunk=CHUNK):
    """chi2 = sum_k weight_k (c2_model,k - c2_k)^2 over pooled points (module docstring).

    ``params`` (14,) in canonical order; ``contrast``, ``offset``, ``phi_unique`` [deg] (n_phi,);
    ``t`` (N,) absolute times [s]; ``q`` [1/A]; ``dt`` [s]; ``points`` the PooledRows of
    :func:`prepare_points`; ``c2`` and ``weight`` (n_points,) in the same order (weight 0 on
    padding points). Reverse-mode differentiable in every float argument; calls with equal
    shapes (and ``chunk``) share one compilation.
    """
    early, late = point_tables(params, contrast, offset, t, q, dt, phi_unique)
    return table_chi2(early, late, q * q, points, c2, weight, chunk)
