"""Public JAX API of the heterodyne physics, compatible with heterodyne 2.0.1 (names, argument
order and values). The package itself calls the kernels of :mod:`heterodyne.core.c2` directly;
the functions here are built on them and on :mod:`heterodyne.core.physics` (every formula and
unit there), and are tested for parity with them.

All functions are float64, jit-compatible and differentiable.
``params`` is the (14,) vector in canonical order
[D0_ref, alpha_ref, D_offset_ref, D0_sample, alpha_sample, D_offset_sample, v0, beta, v_offset,
f0, f1, f2, f3, phi0]; t and dt in s, q in 1/A, angles in degrees.

Residual helpers use each unordered pair (i < j) once and exclude the diagonal t1 == t2:
r_k = (c2_model - c2_data)[i_k, j_k] * sqrt(w[i_k, j_k]) over the upper triangle in row-major
order, and chi^2 = sum_k r_k^2. A weight of 0 removes an element (data there must be finite).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.core import physics
from heterodyne.core.c2 import c2_map, c2_meshgrid, c2_pooled


@partial(jax.jit, static_argnames=("n_times",))
def compute_transport_jit(t, D0, alpha, offset, n_times):
    """Transport rate J(t) = max(D0 t^alpha + offset, 0) [A^2/s] on t of static length n_times."""
    if t.shape[0] != n_times:
        raise ValueError(f"t has length {t.shape[0]}, n_times says {n_times}")
    return physics.transport_rate(t, D0, alpha, offset)


@jax.jit
def compute_g1_transport(J, q):
    """Field correlation of a transport integral: g1 = exp(-q^2 J), J in A^2, q in 1/A."""
    return jnp.exp(-q * q * J)


@jax.jit
def compute_fraction_jit(t, f0, f1, f2, f3):
    """Sample fraction x_s(t) = clip(f0 exp(f1 (t - f2)) + f3, 0, 1) (exponent capped at 700)."""
    return physics.sample_fraction(t, f0, f1, f2, f3)


@jax.jit
def compute_velocity_integral_matrix(t, v0, beta, v_offset, dt):
    """Signed M[i, j] = integral_{t_i}^{t_j} v dt' = C_v[j] - C_v[i] [A] (trapezoidal), (N, N)."""
    c_v = physics.trapezoid_cumsum(physics.velocity_rate(t, v0, beta, v_offset), dt)
    return c_v[None, :] - c_v[:, None]


@jax.jit
def compute_transport_integral_matrix(t, D0, alpha, offset, dt):
    """M[i, j] = |integral_{t_i}^{t_j} J dt'| = |C[j] - C[i]| [A^2] (trapezoidal), (N, N)."""
    c = physics.trapezoid_cumsum(physics.transport_rate(t, D0, alpha, offset), dt)
    return jnp.abs(c[None, :] - c[:, None])


def compute_c2_heterodyne(params, t, q, dt, phi_angle, contrast=1.0, offset=1.0):
    """Two-time c2 on the full N x N meshgrid of t at one angle phi_angle [deg]: (N, N)
    (:func:`~heterodyne.core.c2.c2_map`)."""
    return c2_map(params, t, q, dt, phi_angle, contrast, offset)


def compute_c2_heterodyne_multiphi(params, t, q, dt, phi_unique, contrast_arr, offset_arr):
    """c2 for every angle: (n_phi, N, N); c2[a] uses phi_unique[a], contrast_arr[a], offset_arr[a]
    (:func:`~heterodyne.core.c2.c2_meshgrid`)."""
    return c2_meshgrid(params, t, q, dt, jnp.asarray(phi_unique), jnp.asarray(contrast_arr), jnp.asarray(offset_arr))


def compute_c2_heterodyne_pooled(params, t, q, dt, idx1, idx2, phi_indices, phi_unique, contrast_arr, offset_arr):
    """c2 at pooled points k: phi = phi_unique[phi_indices[k]], t1 = t[idx1[k]], t2 = t[idx2[k]],
    scaled by that angle's contrast/offset: (n_total,) (:func:`~heterodyne.core.c2.c2_pooled`).
    For weighted sums over such points and their gradient (the CMC likelihood),
    :func:`heterodyne.core.pooled_likelihood.pooled_sums` is the same physics, several times faster."""
    return c2_pooled(params, t, q, dt, phi_unique, phi_indices, idx1, idx2, contrast_arr, offset_arr)


def _upper_pairs(n):
    """Row-major (i, j) indices of the strict upper triangle i < j of an n x n matrix."""
    return np.triu_indices(n, k=1)


@jax.jit
def _residuals(params, t, q, dt, phi_angle, c2_data, weights, contrast, offset):
    rows, cols = _upper_pairs(c2_data.shape[-1])
    model = compute_c2_heterodyne(params, t, q, dt, phi_angle, contrast, offset)
    return (model[rows, cols] - c2_data[rows, cols]) * jnp.sqrt(weights[rows, cols])


def compute_residuals(params, t, q, dt, phi_angle, c2_data, weights=None, contrast=1.0, offset=1.0):
    """Weighted residuals over the pairs i < j: (N (N - 1) / 2,). ``weights`` = 1/sigma^2,
    default 1."""
    if weights is None:
        weights = jnp.ones_like(c2_data)
    return _residuals(params, t, q, dt, phi_angle, c2_data, weights, contrast, offset)


@jax.jit
def compute_chi_squared(params, t, q, dt, phi_angle, c2_data, weights, contrast, offset):
    """chi^2 = sum_{i<j} w_ij (c2_model - c2_data)_ij^2 (diagonal excluded, each pair once)."""
    r = _residuals(params, t, q, dt, phi_angle, c2_data, weights, contrast, offset)
    return jnp.sum(r * r)


def batch_chi_squared(params_batch, t, q, dt, phi_angle, c2_data, weights, contrast=1.0, offset=1.0, chunk_size=None):
    """chi^2 for each row of ``params_batch`` (n_sets, 14): (n_sets,).

    At most ``chunk_size`` parameter sets are evaluated at once (vmap), bounding peak memory to
    about chunk_size * 10 * N^2 * 8 bytes; the default keeps that under ~1 GB.
    """
    params_batch = jnp.asarray(params_batch)
    n = c2_data.shape[-1]
    if chunk_size is None:
        chunk_size = max(1, int(1e9 // (80 * n * n)))
    one = lambda p: compute_chi_squared(p, t, q, dt, phi_angle, c2_data, weights, contrast, offset)  # noqa: E731
    batched = jax.jit(jax.vmap(one))
    return jnp.concatenate(
        [batched(params_batch[s : s + chunk_size]) for s in range(0, params_batch.shape[0], chunk_size)]
    )


@jax.jit
def compute_multi_angle_residuals(params, t, q, dt, phi_angles, c2_data_batch, weights_batch, contrasts, offsets):
    """Weighted residuals of every angle, concatenated angle by angle: (n_phi * N (N - 1) / 2,)."""
    per_angle = jax.vmap(lambda phi, d, w, c, o: _residuals(params, t, q, dt, phi, d, w, c, o))
    return per_angle(phi_angles, c2_data_batch, weights_batch, contrasts, offsets).ravel()


#: gradient of chi^2 with respect to the 14 parameters, (14,)
compute_chi_squared_grad = jax.jit(jax.grad(compute_chi_squared, argnums=0))

#: Hessian of chi^2 with respect to the 14 parameters (forward over reverse), (14, 14)
compute_chi_squared_hessian = jax.jit(jax.jacfwd(jax.grad(compute_chi_squared, argnums=0), argnums=0))

_residuals_jacobian = jax.jit(jax.jacfwd(_residuals, argnums=0))


def compute_residuals_jacobian(params, t, q, dt, phi_angle, c2_data, weights=None, contrast=1.0, offset=1.0):
    """d r_k / d params for the residuals of :func:`compute_residuals`: (N (N - 1) / 2, 14)."""
    if weights is None:
        weights = jnp.ones_like(c2_data)
    return _residuals_jacobian(params, t, q, dt, phi_angle, c2_data, weights, contrast, offset)
