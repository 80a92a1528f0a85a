"""The c2 kernels the package calls: the model c2 = offset + contrast * B on a full time grid,
at chosen pairs, or at pooled (angle, pair) points.

B is the normalised bracket of :mod:`heterodyne.core.physics` (every formula and unit there);
``params`` is the (14,) vector in canonical order (:mod:`heterodyne.core.parameters`), t (N,) the
absolute times [s] of a uniform grid of spacing dt [s], q [1/A], angles phi [deg]; contrast and
offset are dimensionless, one per angle. All kernels are float64, jitted and differentiable.

* :func:`c2_map`: one angle, (N, N) (blocked low-rank product, :func:`blocked_map`);
* :func:`c2_meshgrid`: every angle, (n_phi, N, N);
* :func:`c2_pairs`: every angle at the pairs (rows[k], cols[k]), (n_phi, n_pairs);
* :func:`c2_pooled`: point k at angle phi[phi_index[k]] and times (t[idx1[k]], t[idx2[k]]),
  (n_points,), never building (n_phi, N, N).

The public API of :mod:`heterodyne.core.jax_backend`, :mod:`heterodyne.core.physics_kernel` and
:mod:`heterodyne.core.physics_cmc` (compatible with heterodyne 2.0.1) is built on these.
"""

import jax
import jax.numpy as jnp

from heterodyne.core.physics import fraction_weights, grid_quantities, pair_bracket, phase_factor

#: block size of the meshgrid factorisation when no divisor of N fits (see :func:`blocked_map`)
BLOCK = 64


def block_size(n):
    """Block size for an N x N meshgrid: a divisor of n in [32, 160] closest to
    clip(n / 25, 48, 128) (padding the grid costs a full extra copy of the matrix), else BLOCK."""
    target = min(max(n / 25, 48), 128)
    divisors = [b for b in range(32, 161) if n % b == 0]
    return min(divisors, key=lambda b: (abs(b - target), -b)) if divisors else BLOCK


def _direct_bracket(q, pf, c_ref, c_s, c_v, x_s):
    """B_ij on the full grid by direct broadcasting of :func:`pair_bracket`, (N, N)."""
    col, row = (slice(None), None), (None, slice(None))
    return pair_bracket(q, pf, c_ref[col], c_ref[row], c_s[col], c_s[row], c_v[col], c_v[row], x_s[col], x_s[row])


def _block_factors(q2, a_r, a_s, a_c, cos_t, sin_t, c_ref, c_s, blk, ref_ref, ref_s, mask, sign):
    """Row (npad, 4) and column (nb, 4, npad) factors of the pairs whose column j lies on the
    ``mask`` side of row block I, about the reference C values ``ref_ref[I]``, ``ref_s[I]``.

    sign = +1: references at the end of each block, pairs j after block I (C_i <= R <= C_j);
    sign = -1: references at the start, pairs j before block I (C_j <= R <= C_i). Every exponent
    is <= 0, so the factors never overflow.
    """
    d_row_r, d_row_s = sign * (ref_ref[blk] - c_ref), sign * (ref_s[blk] - c_s)
    row_c = 2.0 * a_c * jnp.exp(-0.5 * q2 * (d_row_r + d_row_s))
    row = jnp.stack([a_r * jnp.exp(-q2 * d_row_r), a_s * jnp.exp(-q2 * d_row_s), row_c * cos_t, row_c * sin_t], axis=-1)
    d_col_r = jnp.where(mask, sign * (c_ref[None, :] - ref_ref[:, None]), 0.0)
    d_col_s = jnp.where(mask, sign * (c_s[None, :] - ref_s[:, None]), 0.0)
    col_c = a_c * jnp.exp(-0.5 * q2 * (d_col_r + d_col_s))
    col = jnp.stack([a_r * jnp.exp(-q2 * d_col_r), a_s * jnp.exp(-q2 * d_col_s), col_c * cos_t, col_c * sin_t], axis=1)
    return row, jnp.where(mask[:, None, :], col, 0.0)


def blocked_map(q, pf, c_ref, c_s, c_v, x_s, contrast, offset):
    """c2_ij = offset + contrast * B_ij on the full N x N grid as a blocked low-rank product
    (equal to the direct formula to rounding).

    With a = x^2 / n, n = x_r^2 + x_s^2 and theta = q cos(phi + phi0) C_v, for C_i <= R <= C_j

        B_ij = a_r,i e^{-q^2 (R_r - C_r,i)} a_r,j e^{-q^2 (C_r,j - R_r)} + (same for sample)
             + 2 a_c,i a_c,j e^{-q^2 [(R_r - C_r,i) + (R_s - C_s,i) + (C_r,j - R_r) + (C_s,j - R_s)]/2}
               (cos theta_i cos theta_j + sin theta_i sin theta_j),

    a sum of 4 separable terms, since J >= 0 makes C non-decreasing. Rows are cut into blocks of
    ``block`` (default :func:`block_size`); for columns after (before) row block I the reference
    R is C at the end (start) of block I, so all exponents are <= 0 and nothing overflows. The
    contrast scales the row factors and the offset is a ninth separable term (offset x 1), so one
    (B x 9) @ (9 x N) product per row block writes c2 directly; the diagonal blocks use
    :func:`pair_bracket`. Cost: O(N^2) multiply-adds plus O(N * B) transcendental evaluations,
    instead of O(N^2) exp/cos.
    """
    n = c_ref.shape[0]
    block = block_size(n)
    if n <= block:
        return offset + contrast * _direct_bracket(q, pf, c_ref, c_s, c_v, x_s)
    nb = -(-n // block)
    npad = nb * block
    c_ref, c_s, c_v, x_s = (jnp.pad(a, (0, npad - n), mode="edge") for a in (c_ref, c_s, c_v, x_s))
    a_r, a_s, a_c = fraction_weights(x_s)
    theta = pf * c_v
    common = (q * q, a_r, a_s, a_c, jnp.cos(theta), jnp.sin(theta), c_ref, c_s)
    blk = jnp.arange(npad) // block
    row_blocks = jnp.arange(nb)
    first, last = row_blocks * block, row_blocks * block + (block - 1)
    row_after, col_after = _block_factors(*common, blk, c_ref[last], c_s[last], blk[None, :] > row_blocks[:, None], 1.0)
    row_before, col_before = _block_factors(
        *common, blk, c_ref[first], c_s[first], blk[None, :] < row_blocks[:, None], -1.0
    )
    rows = jnp.concatenate(
        [contrast * row_after, contrast * row_before, jnp.full((npad, 1), offset, dtype=row_after.dtype)], axis=-1
    )
    cols = jnp.concatenate([col_after, col_before, jnp.ones((nb, 1, npad), col_after.dtype)], axis=1)
    full = jnp.einsum("ibk,ikj->ibj", rows.reshape(nb, block, 9), cols)
    cr, cs, cv, xs = (a.reshape(nb, block) for a in (c_ref, c_s, c_v, x_s))
    ii, jj = (slice(None), slice(None), None), (slice(None), None, slice(None))
    diagonal = offset + contrast * pair_bracket(q, pf, cr[ii], cr[jj], cs[ii], cs[jj], cv[ii], cv[jj], xs[ii], xs[jj])
    full = full.reshape(nb, block, nb, block).at[row_blocks, :, row_blocks, :].set(diagonal)
    return full.reshape(npad, npad)[:n, :n]


@jax.jit
def c2_map(params, t, q, dt, phi, contrast, offset):
    """c2_ij = offset + contrast * B_ij at one angle ``phi`` [deg] on the N x N grid of t: (N, N)."""
    c_ref, c_s, c_v, x_s = grid_quantities(params, t, dt)
    return blocked_map(q, phase_factor(q, phi, params[13]), c_ref, c_s, c_v, x_s, contrast, offset)


@jax.jit
def c2_meshgrid(params, t, q, dt, phi, contrast, offset):
    """c2[a] = :func:`c2_map` at phi[a] [deg] with contrast[a], offset[a] ((n_phi,) each):
    (n_phi, N, N)."""
    one = lambda p, c, o: c2_map(params, t, q, dt, p, c, o)  # noqa: E731
    return jax.vmap(one)(phi, contrast, offset)


@jax.jit
def c2_pairs(params, t, q, dt, phi, rows, cols, contrast, offset):
    """c2[a, k] = offset[a] + contrast[a] * B(t[rows[k]], t[cols[k]]; phi[a]) for every angle
    phi (n_phi,) [deg] at the pairs rows, cols (n_pairs,) int: (n_phi, n_pairs)."""
    c_ref, c_s, c_v, x_s = grid_quantities(params, t, dt)
    pf = phase_factor(q, phi, params[13])[:, None]
    bracket = pair_bracket(
        q,
        pf,
        c_ref[rows][None],
        c_ref[cols][None],
        c_s[rows][None],
        c_s[cols][None],
        c_v[rows][None],
        c_v[cols][None],
        x_s[rows][None],
        x_s[cols][None],
    )
    return offset[:, None] + contrast[:, None] * bracket


@jax.jit
def c2_pooled(params, t, q, dt, phi, phi_index, idx1, idx2, contrast, offset):
    """c2[k] = offset[a] + contrast[a] * B(t[idx1[k]], t[idx2[k]]; phi[a]) with a = phi_index[k],
    for angles phi, contrast, offset (n_phi,) and points phi_index, idx1, idx2 (n_points,) int:
    (n_points,)."""
    c_ref, c_s, c_v, x_s = grid_quantities(params, t, dt)
    pf = phase_factor(q, phi, params[13])[phi_index]
    bracket = pair_bracket(
        q, pf, c_ref[idx1], c_ref[idx2], c_s[idx1], c_s[idx2], c_v[idx1], c_v[idx2], x_s[idx1], x_s[idx2]
    )
    return offset[phi_index] + contrast[phi_index] * bracket
