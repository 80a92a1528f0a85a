"""Normal equations accumulated in chunks, covariance, standard errors and correlations.

Expanded parameter vector p = [x_free (n_free), contrast (n_s), offset (n_s)] with n_s = n_phi
(per-angle scaling) or 1 (shared). With J = d r / d p at fixed contrast/offset (the explicit,
not projected, parameterisation) the routines here return, without ever holding J:

    M = J^T J  (n_p, n_p),   g = J^T r  (n_p,),   chi2_a = sum_k r_ak^2  (n_phi,),

summing over chunks of ``chunk`` pairs (all angles at once), so peak memory is about
chunk * n_phi * n_p * 8 bytes times a small constant for the forward-mode tangents.

Covariance: C = (J^T J)^-1 * chi2 / dof, i.e. scaled by the reduced chi2 (which absorbs a global
mis-estimate of sigma); where elements covary (speckle noise model) the sandwich
(J^T J)^-1 S (J^T J)^-1 * chi2 / dof instead (:mod:`heterodyne.fit.speckle_covariance`); standard
errors se_p = sqrt(C_pp); correlation C_pq / (se_p se_q). A
parameter the data do not determine (J^T J singular along it) gets no standard error (NaN).
At the optimum the (x_free, x_free) block of C equals the variable-projection covariance, and the
contrast/offset blocks give their standard errors.
"""

import logging

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.fit.problem import full_theta, pair_brackets, scaling_sums

log = logging.getLogger(__name__)

STDERR_SCALING = (
    "standard errors from the covariance (J^T J)^-1 scaled by the reduced chi2 "
    "(chi2 / dof), J the Jacobian of the sigma-weighted residuals in all free "
    "parameters including contrast and offset"
)
STDERR_SANDWICH = (
    "standard errors from the sandwich covariance H^-1 S H^-1 scaled by the reduced "
    "chi2 (chi2 / dof), H = J^T J, J the Jacobian of the sigma-weighted residuals in "
    "all free parameters including contrast and offset, S the covariance of J^T r "
    "under each angle's noise model (speckle: elements that share frames covary)"
)

#: bytes per Jacobian element counted by the memory estimate (float64)
BYTES_PER_ELEMENT = 8
#: forward-mode intermediates per Jacobian element, used to size chunks
TANGENT_OVERHEAD = 16
#: eigenvalues of the equilibrated J^T J below RCOND * the largest count as zero
RCOND = 1e-14
#: a parameter whose squared weight in the null space exceeds this is undetermined
NULL_WEIGHT = 1e-3


def jacobian_bytes(n_rows, n_cols):
    """Bytes of a dense float64 Jacobian of n_rows residuals x n_cols parameters."""
    return int(n_rows) * int(n_cols) * BYTES_PER_ELEMENT


def over_budget(n_rows, n_cols, budget_bytes, what, instead):
    """(chunked, estimate): whether the Jacobian of :func:`jacobian_bytes` (n_rows, n_cols) =
    ``estimate`` exceeds ``budget_bytes`` (nlsq.jacobian_memory_mb); if so it is logged as
    "``what`` would take ... MiB (> ...): ``instead``"."""
    estimate = jacobian_bytes(n_rows, n_cols)
    chunked = estimate > budget_bytes
    if chunked:
        log.info(
            "%s would take %.0f MiB (> nlsq.jacobian_memory_mb = %.0f MiB): %s",
            what,
            estimate / 2**20,
            budget_bytes / 2**20,
            instead,
        )
    return chunked, estimate


def chunk_pairs(budget_bytes, n_phi, n_cols, n_pairs):
    """Pairs per chunk so that one chunk's Jacobian and tangents fit ``budget_bytes``."""
    per_pair = n_phi * n_cols * BYTES_PER_ELEMENT * TANGENT_OVERHEAD
    return int(min(n_pairs, max(64, budget_bytes // per_pair)))


def split_into_chunks(problem, chunk):
    """(rows, cols, data, weight) padded to a multiple of ``chunk`` pairs (padding has weight 0)
    and reshaped to (n_chunks, chunk) / (n_chunks, n_phi, chunk)."""
    n_pairs = problem.rows.shape[0]
    pad = (-n_pairs) % chunk
    n_chunks = (n_pairs + pad) // chunk

    def split_pairs(a):
        return jnp.pad(a, (0, pad)).reshape(n_chunks, chunk)

    def split_values(a):
        return jnp.pad(a, ((0, 0), (0, pad))).reshape(a.shape[0], n_chunks, chunk).swapaxes(0, 1)

    return (
        split_pairs(problem.rows),
        split_pairs(problem.cols),
        split_values(problem.data),
        split_values(problem.weight),
    )


def _scaling_index(n_phi, shared):
    return jnp.zeros(n_phi, dtype=jnp.int32) if shared else jnp.arange(n_phi)


def chunk_residuals(p, template, free_index, problem, rows, cols, data, weight, shared):
    """Explicit residuals of one chunk, (n_phi * chunk,), for p = [x_free, c, o]."""
    n_free = free_index.shape[0]
    n_s = (p.shape[0] - n_free) // 2
    theta = full_theta(p[:n_free], template, free_index)
    which = _scaling_index(problem.phi.shape[0], shared)
    c, o = p[n_free : n_free + n_s][which], p[n_free + n_s :][which]
    brackets = pair_brackets(theta, problem, rows, cols)
    return (weight * (c[:, None] * brackets + o[:, None] - data)).ravel()


def _chunk_residuals_per_angle(p, template, free_index, problem, rows, cols, data, weight, shared):
    return chunk_residuals(p, template, free_index, problem, rows, cols, data, weight, shared).reshape(weight.shape)


def _normal_equations(p, template, free_index, problem, chunk, shared):
    rows, cols, data, weight = split_into_chunks(problem, chunk)
    n_p, n_phi = p.shape[0], problem.phi.shape[0]
    jac = jax.jacfwd(chunk_residuals)

    def step(carry, xs):
        m, g, chi2 = carry
        r_rows, r_cols, r_data, r_weight = xs
        args = (template, free_index, problem, r_rows, r_cols, r_data, r_weight, shared)
        r = _chunk_residuals_per_angle(p, *args)
        j = jac(p, *args)
        return (m + j.T @ j, g + j.T @ r.ravel(), chi2 + (r * r).sum(-1)), None

    init = (jnp.zeros((n_p, n_p)), jnp.zeros(n_p), jnp.zeros(n_phi))
    (m, g, chi2), _ = jax.lax.scan(step, init, (rows, cols, data, weight))
    return m, g, chi2


#: M = J^T J, g = J^T r, chi2 per angle at p = [x_free, contrast, offset], accumulated in chunks
normal_equations = jax.jit(_normal_equations, static_argnames=("chunk", "shared"))


def _chunked_scaling_sums(x_free, template, free_index, problem, chunk):
    rows, cols, data, weight = split_into_chunks(problem, chunk)
    theta = full_theta(x_free, template, free_index)

    def step(acc, xs):
        r_rows, r_cols, r_data, r_weight = xs
        return acc + scaling_sums(pair_brackets(theta, problem, r_rows, r_cols), r_data, r_weight), None

    sums, _ = jax.lax.scan(step, jnp.zeros((problem.phi.shape[0], 6)), (rows, cols, data, weight))
    return sums


#: the moments of :func:`heterodyne.fit.problem.scaling_sums` over all pairs, in chunks
chunked_scaling_sums = jax.jit(_chunked_scaling_sums, static_argnames=("chunk",))


def covariance(normal_matrix, chi2, dof, score_covariance=None):
    """C = M^-1 S M^-1 * chi2 / dof (S = M unless ``score_covariance`` is given, so C = M^-1 *
    chi2 / dof), and which parameters the data do not determine.

    M is equilibrated to a unit diagonal first. Directions with eigenvalue below RCOND times the
    largest span the null space (a zero Jacobian column, or columns that only act together); a
    parameter with weight above NULL_WEIGHT there is undetermined: M^-1 is the pseudo-inverse and
    its standard error and correlations are NaN. Returns (C, se, correlation, undetermined).
    """
    m = np.asarray(normal_matrix, dtype=np.float64)
    scale = np.sqrt(np.clip(np.diag(m), 1e-300, None))
    unit = m / np.outer(scale, scale)  # equilibrated: unit diagonal (0 where a column is zero)
    lam, vec = np.linalg.eigh(0.5 * (unit + unit.T))
    null = lam <= RCOND * max(lam.max(), 0.0)
    undetermined = (vec[:, null] ** 2).sum(axis=1) > NULL_WEIGHT
    inverse = (vec[:, ~null] / lam[~null]) @ vec[:, ~null].T / np.outer(scale, scale)
    if score_covariance is not None:
        inverse = inverse @ np.asarray(score_covariance, dtype=np.float64) @ inverse
    cov = inverse * (chi2 / dof)
    se = np.where(undetermined, np.nan, np.sqrt(np.clip(np.diag(cov), 0.0, None)))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(se, se)
    return cov, se, corr, undetermined


def covariance_fields(normal_matrix, chi2, dof, score_covariance, names):
    """(fields, se, undetermined names) of :func:`covariance` over the parameters ``names``:
    ``fields`` the fit result's covariance, covariance_independent (the covariance had every element
    independent noise, M^-1 chi2 / dof: the same matrix unless ``score_covariance`` is given),
    covariance_names and correlation."""
    cov, se, corr, lost = covariance(normal_matrix, chi2, dof, score_covariance)
    fields = {
        "covariance": cov,
        "covariance_independent": cov if score_covariance is None else covariance(normal_matrix, chi2, dof)[0],
        "covariance_names": list(names),
        "correlation": corr,
    }
    return fields, se, [name for name, flag in zip(names, lost, strict=True) if flag]
