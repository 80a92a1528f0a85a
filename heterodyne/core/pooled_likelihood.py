"""Per-angle sufficient statistics of the pooled model with a hand-written gradient (the CMC
likelihood).

For the pooled points k = (a_k, i_k, j_k) of a shard (angle phi_unique[a_k] [deg], times
t[i_k] <= t[j_k] [s]), observed c2_k and weights w_k = mask_k / sigma_k^2 (sigma in c2 units),
the model c2_model,k = offset_a + contrast_a B_k is linear in each angle's contrast and offset, so
the Gaussian log-likelihood depends on the data only through the per-angle sums

    S1_a = sum_{k in a} w_k B_k,   S2_a = sum_{k in a} w_k B_k^2,   S3_a = sum_{k in a} w_k B_k c2_k

(units 1/c2^2 times B, B^2 and B c2) and the data-only sums sum w, sum w c2, sum w c2^2:

    chi2_a = o^2 sum w + 2 o c S1 + c^2 S2 - 2 o sum w c2 - 2 c S3 + sum w c2^2.

B_k is the normalised bracket of :mod:`heterodyne.core.physics` (the same C_ref, C_sample,
C_v, x_s and phase factor; it equals :func:`heterodyne.core.c2.c2_pooled` with contrast 1 and
offset 0 to rounding). With the fraction weights a_r, a_s, a_c
(:func:`~heterodyne.core.physics.fraction_weights`) and the phase
theta_a = q cos(phi_a + phi0) C_v [rad] of each (angle, time),

    B_ij = a_r,i a_r,j E_r + a_s,i a_s,j E_s
           + 2 a_c,i a_c,j X (cos theta_i cos theta_j + sin theta_i sin theta_j),
    e_n = exp(-q^2 (C_n,j - C_n,i) / 2)  (n = r, s),   E_r = e_r^2,  E_s = e_s^2,  X = e_r e_s,

because J >= 0 makes C non-decreasing, so C_n,j - C_n,i = |I_n| >= 0 for i <= j (q in 1/A, C_n
in A^2): every exponent is <= 0 and nothing overflows. A point costs 2 exp and no cos. The product
form of cos(theta_j - theta_i) has an absolute error ~1e-16 |theta|, the size of the rounding of
q cos(.) (C_v,j - C_v,i) in the reference path.

Everything a point needs is gathered from two per-time tables, column a N + i (N = len(t)):

    early (6 rows) = (C_r, C_s, a_r, a_s, 2 a_c cos theta_a, 2 a_c sin theta_a)
    late  (6 rows) = (C_r, C_s, a_r, a_s, a_c cos theta_a, a_c sin theta_a)

With u = early[:, a N + i] and v = late[:, a N + j]:

    T_r = u2 v2 E_r,  T_s = u3 v3 E_s,  T_c = (u4 v4 + u5 v5) X,  B = T_r + T_s + T_c,  h = q^2 / 2,
    d B / d u = (h (2 T_r + T_c), h (2 T_s + T_c), v2 E_r, v3 E_s, v4 X, v5 X),
    d B / d v = (-h (2 T_r + T_c), -h (2 T_s + T_c), u2 E_r, u3 E_s, u4 X, u5 X),
    d B / d q^2 = -[(2 T_r + T_c)(v0 - u0) + (2 T_s + T_c)(v1 - u1)] / 2.

Gradient: for a cotangent (g1_a, g2_a, g3_a) of the sums, point k carries
g_k = w_k (g1_a + 2 g2_a B_k + g3_a c2_k) (= d/dB_k of the cotangent-weighted sums); g_k times
the rows above is scatter-added onto the table columns, and ordinary autodiff carries them
(O(n_phi N) work) to params, t, dt, q and phi_unique. The forward pass accumulates the sums, the
backward pass recomputes B and accumulates the table gradients. Points are processed in chunks of
``chunk`` (``lax.scan``) so the per-point intermediates stay in cache. Reverse mode only
(jax.grad, value_and_grad, vjp; not jvp, jacfwd or hessian).
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.core import physics

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
    are passed to :func:`pooled_sums` as they are."""
    phi_index, idx1, idx2 = (np.asarray(a) for a in (phi_index, idx1, idx2))
    if not (phi_index.ndim == idx1.ndim == idx2.ndim == 1 and phi_index.shape == idx1.shape == idx2.shape):
        raise ValueError(
            f"phi_index, idx1, idx2 must be 1-D of equal length, got {phi_index.shape}, {idx1.shape}, {idx2.shape}"
        )
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


def point_tables(params, t, q, dt, phi_unique):
    """The tables ``early`` and ``late`` (6, n_phi N) of the module docstring."""
    c_ref, c_s, c_v, x_s = physics.grid_quantities(params, t, dt)
    a_r, a_s, a_c = physics.fraction_weights(x_s)
    theta = physics.phase_factor(q, phi_unique, params[13])[:, None] * c_v[None, :]
    cos_t, sin_t = a_c * jnp.cos(theta), a_c * jnp.sin(theta)
    per_angle = partial(jnp.broadcast_to, shape=theta.shape)
    common = [per_angle(c_ref), per_angle(c_s), per_angle(a_r), per_angle(a_s)]
    early = jnp.stack(common + [2.0 * cos_t, 2.0 * sin_t])
    late = jnp.stack(common + [cos_t, sin_t])
    return early.reshape(6, -1), late.reshape(6, -1)


def _chunked(step, carry, arrays, chunk):
    """Fold ``carry = step(carry, chunk_of_arrays)`` over consecutive chunks of ``chunk`` points
    (a scan over the full chunks, then the tail)."""
    n = arrays[0].shape[0]
    full = n - n % chunk
    if full:
        carry, _ = jax.lax.scan(
            lambda c, x: (step(c, x), None), carry, tuple(a[:full].reshape(-1, chunk) for a in arrays)
        )
    if n > full:
        carry = step(carry, tuple(a[full:] for a in arrays))
    return carry


def _point_terms(early, late, q2, cols_i, cols_j):
    """Gathered u, v (lists of rows), v0 - u0, v1 - u1, e_r, e_s, T_r, T_s, T_c and B."""
    # materialised, contiguous gathers: the arithmetic below then vectorises
    u, v = jax.lax.optimization_barrier(([row[cols_i] for row in early], [row[cols_j] for row in late]))
    d_r, d_s = v[0] - u[0], v[1] - u[1]
    e_r, e_s = jnp.exp(-0.5 * q2 * d_r), jnp.exp(-0.5 * q2 * d_s)
    t_r, t_s = u[2] * v[2] * (e_r * e_r), u[3] * v[3] * (e_s * e_s)
    t_c = (u[4] * v[4] + u[5] * v[5]) * (e_r * e_s)
    return u, v, d_r, d_s, e_r, e_s, t_r, t_s, t_c, t_r + t_s + t_c


def _sums(early, late, q2, points, c2, weight, n_times, chunk):
    """(S1, S2, S3) per angle, (n_phi, 3) (module docstring)."""

    def step(sums, x):
        cols_i, cols_j, c2_k, w_k = x
        bracket = _point_terms(early, late, q2, cols_i, cols_j)[-1]
        wb = w_k * bracket
        terms = jnp.stack([wb, wb * bracket, wb * c2_k])
        angle = cols_i // n_times
        # a masked sum per angle: vectorises, unlike a scatter-add onto n_phi rows
        return sums + jnp.stack([jnp.sum(jnp.where(angle == a, terms, 0.0), axis=1) for a in range(sums.shape[0])])

    init = jnp.zeros((early.shape[1] // n_times, 3), early.dtype)
    return _chunked(step, init, (*points, c2, weight), chunk)


def _table_grads(early, late, q2, points, c2, weight, cotangent, n_times, chunk):
    """Gradients of sum_a (cotangent_a . sums_a) with respect to the two tables and q^2."""

    def step(carry, x):
        d_early, d_late, d_q2 = carry
        cols_i, cols_j, c2_k, w_k = x
        u, v, d_r, d_s, e_r, e_s, t_r, t_s, t_c, bracket = _point_terms(early, late, q2, cols_i, cols_j)
        ct = cotangent[cols_i // n_times]
        g = w_k * (ct[:, 0] + 2.0 * ct[:, 1] * bracket + ct[:, 2] * c2_k)
        # materialised once, shared by the 12 gradient rows below
        g_r, g_s, g_big_r, g_big_s, g_cross = jax.lax.optimization_barrier(
            (g * (2.0 * t_r + t_c), g * (2.0 * t_s + t_c), g * (e_r * e_r), g * (e_s * e_s), g * (e_r * e_s))
        )
        h = 0.5 * q2
        zero = jnp.zeros_like(g)  # pads the rows to ROW_WIDTH
        grad_u = jnp.stack(
            [h * g_r, h * g_s, v[2] * g_big_r, v[3] * g_big_s, v[4] * g_cross, v[5] * g_cross, zero, zero]
        )
        grad_v = jnp.stack(
            [-h * g_r, -h * g_s, u[2] * g_big_r, u[3] * g_big_s, u[4] * g_cross, u[5] * g_cross, zero, zero]
        )
        return (
            d_early.at[cols_i].add(grad_u.T),
            d_late.at[cols_j].add(grad_v.T),
            d_q2 - 0.5 * jnp.sum(g_r * d_r + g_s * d_s),
        )

    init = (
        jnp.zeros((early.shape[1], ROW_WIDTH), early.dtype),
        jnp.zeros((late.shape[1], ROW_WIDTH), late.dtype),
        jnp.zeros((), early.dtype),
    )
    d_early, d_late, d_q2 = _chunked(step, init, (*points, c2, weight), chunk)
    return d_early[:, :6].T, d_late[:, :6].T, d_q2


@partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def table_sums(early, late, q2, points, c2, weight, n_times, chunk):
    """(S1, S2, S3) per angle from the tables of :func:`point_tables`, q2 = q^2 [1/A^2] and the
    PooledRows ``points``; the gradient flows to the tables and q2 only."""
    # materialised tables: XLA would otherwise fuse their O(N) computation into every gather
    early, late = jax.lax.optimization_barrier((early, late))
    return _sums(early, late, q2, points, c2, weight, n_times, chunk)


def _table_sums_fwd(early, late, q2, points, c2, weight, n_times, chunk):
    early, late = jax.lax.optimization_barrier((early, late))
    return _sums(early, late, q2, points, c2, weight, n_times, chunk), (early, late, q2, points, c2, weight)


def _table_sums_bwd(n_times, chunk, saved, cotangent):
    early, late, q2, points, c2, weight = saved
    d_early, d_late, d_q2 = _table_grads(early, late, q2, points, c2, weight, cotangent, n_times, chunk)
    return d_early, d_late, d_q2, None, None, None


table_sums.defvjp(_table_sums_fwd, _table_sums_bwd)


@partial(jax.jit, static_argnames=("chunk",))
def pooled_sums(params, t, q, dt, phi_unique, points, c2, weight, *, chunk=CHUNK):
    """(S1, S2, S3) = sum w B, sum w B^2, sum w B c2 per angle, (n_phi, 3) (module docstring).

    ``params`` (14,) in canonical order; ``phi_unique`` [deg] (n_phi,); ``t`` (N,) absolute
    times [s]; ``q`` [1/A]; ``dt`` [s]; ``points`` the PooledRows of :func:`prepare_points`;
    ``c2`` and ``weight`` (n_points,) in the same order (weight 0 on padding points), data: no
    gradient flows to them. Reverse-mode differentiable in params, t, q, dt and phi_unique;
    calls with equal shapes (and ``chunk``) share one compilation.
    """
    early, late = point_tables(params, t, q, dt, phi_unique)
    return table_sums(early, late, q * q, points, c2, weight, t.shape[0], chunk)
