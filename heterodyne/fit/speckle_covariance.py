"""Covariance of the NLSQ estimate when the map's elements share frames (speckle noise model).

The estimate p (free physics, contrast, offset) solves J^T r = 0 for the weighted residuals
r_e = w_e (model_e - data_e), w_e = 1 / sigma_e. To first order its error is
dp = -H^-1 sum_e a_e eps_e with H = J^T J, a_e = w_e J_e (= w_e^2 d model_e / dp) and eps_e the
data noise of element e, so

    Cov(p) = H^-1 S H^-1,   S = sum_{e, e'} a_e a_e'^T Cov(eps_e, eps_e').

Independent noise (Cov = sigma_e^2 delta) gives S = H and the usual H^-1. Under the speckle model
of :mod:`heterodyne.noise_model`, Cov(eps_ij, eps_kl) = kappa (K_ik K_jl + K_il K_jk) per angle
(angles are separate pixel regions, hence independent). With A^p the symmetric N x N map of the
p-th component of a_e (A_ij = A_ji = a_(i<j), 0 on the diagonal), the double sum over pairs is a
trace,

    S_pq = (kappa / 2) tr(A^p K A^q K),

costing n_p matrix products of N x N per angle. The kernel K is the fitted model less its offset,
contrast * B(t_i, t_k), off the diagonal, and the noise model's smoothed raw diagonal level on it.
"""

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.core.c2 import c2_meshgrid
from heterodyne.fit.uncertainty import chunk_residuals, split_into_chunks

_jacobian_of_chunk = jax.jacfwd(chunk_residuals)


def _explicit_jacobian(p, template, free_index, problem, chunk, shared):
    rows, cols, data, weight = split_into_chunks(problem, chunk)
    n_phi = problem.phi.shape[0]

    def one(xs):
        r_rows, r_cols, r_data, r_weight = xs
        jac = _jacobian_of_chunk(p, template, free_index, problem, r_rows, r_cols, r_data, r_weight, shared)
        return jac.reshape(n_phi, r_rows.shape[0], -1)

    jac = jax.lax.map(one, (rows, cols, data, weight))  # (n_chunks, n_phi, chunk, n_p)
    return jnp.moveaxis(jac, 1, 0).reshape(n_phi, -1, p.shape[0])[:, : problem.rows.shape[0]]


#: d r / d p of every pair, (n_phi, n_pairs, n_p), for p = [x_free, contrast, offset], in chunks
explicit_jacobian = jax.jit(_explicit_jacobian, static_argnames=("chunk", "shared"))


def speckle_score_covariance(jacobian, weight, rows, cols, kernel, kappa):
    """S of the module docstring for one angle: ``jacobian`` (n_pairs, n_p) of the weighted
    residuals, ``weight`` (n_pairs,) = 1 / sigma_e (0 where masked), pairs (rows, cols), ``kernel``
    (N, N) K and ``kappa``; returns (n_p, n_p)."""
    n = kernel.shape[0]
    a = np.asarray(jacobian) * np.asarray(weight)[:, None]
    maps = np.zeros((a.shape[1], n, n))
    maps[:, rows, cols] = a.T
    maps[:, cols, rows] = a.T
    products = maps @ kernel  # (n_p, N, N): A^p K
    return 0.5 * kappa * np.einsum("pij,qji->pq", products, products)


def speckle_kernel(contrast_bracket, diagonal_level):
    """K (N, N): contrast * B off the diagonal (from the fitted model) and the noise model's
    diagonal level D_i on it."""
    kernel = np.array(contrast_bracket, dtype=np.float64)
    np.fill_diagonal(kernel, diagonal_level)
    return kernel


def score_covariance(x_free, contrast, offset, theta, template, free_index, problem, chunk, shared, noise):
    """S (n_p, n_p) of the module docstring over p = [x_free, contrast (n_s), offset (n_s)] (n_s = 1
    when ``shared``), summed over angles: J_a^T J_a for an angle with independent noise, the
    speckle trace for an angle whose ``noise`` model is "speckle". ``contrast``, ``offset``
    (n_phi,) and ``theta`` (14,) are the same solution. One angle at a time, so the memory is
    about n_pairs * (n_free + 2) + (n_free + 2) * N^2 doubles."""
    n_free, n_phi = len(x_free), problem.phi.shape[0]
    n_s = 1 if shared else n_phi
    brackets = np.asarray(
        c2_meshgrid(
            jnp.asarray(theta), problem.t, problem.q, problem.dt, problem.phi, jnp.asarray(contrast), jnp.zeros(n_phi)
        )
    )
    rows, cols = np.asarray(problem.rows), np.asarray(problem.cols)
    total = np.zeros((n_free + 2 * n_s, n_free + 2 * n_s))
    for a, angle_noise in enumerate(noise):
        one = problem._replace(
            phi=problem.phi[a : a + 1], data=problem.data[a : a + 1], weight=problem.weight[a : a + 1]
        )
        p = jnp.concatenate([jnp.asarray(x_free), jnp.asarray([contrast[a], offset[a]])])
        jacobian = np.asarray(explicit_jacobian(p, template, free_index, one, chunk, False))[0]
        if angle_noise.model == "speckle":
            kernel = speckle_kernel(brackets[a], angle_noise.diagonal_level)
            block = speckle_score_covariance(jacobian, np.asarray(one.weight)[0], rows, cols, kernel, angle_noise.kappa)
        else:
            block = jacobian.T @ jacobian
        at = [*range(n_free), n_free + (0 if shared else a), n_free + n_s + (0 if shared else a)]
        total[np.ix_(at, at)] += block
    return total
