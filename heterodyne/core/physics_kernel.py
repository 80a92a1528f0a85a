"""The single home of the heterodyne physics (He et al., PNAS 2024 and 2025, SI Eq. S-95 of 2025).

Units: t, dt in s; q in 1/Angstrom; phi, phi0 in degrees; parameters as in
:mod:`heterodyne.core.parameters`.

On the uniform time grid t_k (spacing dt):

* rates  J_n(t) = max(D0_n t^alpha_n + D_offset_n, 0)  [A^2/s], n = ref, sample;
  v(t) = v0 t^beta + v_offset  [A/s, signed];  t^a := 0 where t <= 0.
* trapezoidal cumulative integrals C[0] = 0, C[k] = sum_{i<k} (r[i] + r[i+1]) / 2 * dt, so
  I(t_i -> t_j) = C[j] - C[i]  (A^2 for J, A for v).
* sample fraction x_s(t) = clip(f0 exp(min(f1 (t - f2), 700)) + f3, 0, 1), x_r = 1 - x_s.
* c2(t_i, t_j, phi) = offset + contrast * B_ij with the normalised bracket

      B_ij = [ (x_r,i x_r,j)^2 e^{-q^2 |I_r|} + (x_s,i x_s,j)^2 e^{-q^2 |I_s|}
               + 2 x_r,i x_s,i x_r,j x_s,j e^{-q^2 (|I_r| + |I_s|)/2} cos(q cos(phi + phi0) I_v) ]
             / [ (x_r,i^2 + x_s,i^2)(x_r,j^2 + x_s,j^2) ]          (dimensionless).

Three evaluation strategies share these primitives: ``meshgrid`` (N x N), ``elementwise``
(pairs of a :class:`~heterodyne.core.physics_cmc.ShardGrid`) and ``pooled`` (points
(phi_indices[k], idx1[k], idx2[k]) over several angles, never building (n_phi, N, N)).
:mod:`heterodyne.core.pooled_likelihood` builds the Consensus Monte Carlo chi2 of pooled points,
with a hand-written gradient, from the same primitives.
"""

from functools import partial

import jax
import jax.numpy as jnp

#: cap on exponents fed to exp(); e^700 ~ 1e304 is still finite in float64
EXP_CAP = 700.0


def power_law(t, amplitude, exponent):
    """amplitude * t^exponent with t^a := 0 for t <= 0 (safe for a < 0 and for gradients)."""
    positive = t > 0
    t_safe = jnp.where(positive, t, 1.0)
    return jnp.where(positive, amplitude * t_safe**exponent, 0.0)


def transport_rate(t, D0, alpha, D_offset):
    """J(t) = max(D0 t^alpha + D_offset, 0)  [A^2/s]."""
    return jnp.maximum(power_law(t, D0, alpha) + D_offset, 0.0)


def velocity_rate(t, v0, beta, v_offset):
    """v(t) = v0 t^beta + v_offset  [A/s], signed."""
    return power_law(t, v0, beta) + v_offset


def sample_fraction(t, f0, f1, f2, f3):
    """x_s(t) = clip(f0 exp(min(f1 (t - f2), 700)) + f3, 0, 1)  (dimensionless)."""
    return jnp.clip(f0 * jnp.exp(jnp.minimum(f1 * (t - f2), EXP_CAP)) + f3, 0.0, 1.0)


def trapezoid_cumsum(rate, dt):
    """C[0] = 0, C[k] = sum_{i<k} (rate[i] + rate[i+1]) / 2 * dt  (units of rate * s)."""
    steps = 0.5 * (rate[1:] + rate[:-1]) * dt
    return jnp.concatenate([jnp.zeros((1,), rate.dtype), jnp.cumsum(steps)])


def grid_quantities(params, t, dt):
    """Cumulative integrals of J_ref, J_sample, v and the sample fraction on the grid t.

    Returns (C_ref [A^2], C_sample [A^2], C_v [A], x_s [1]), each of shape (N,).
    """
    c_ref = trapezoid_cumsum(transport_rate(t, params[0], params[1], params[2]), dt)
    c_sample = trapezoid_cumsum(transport_rate(t, params[3], params[4], params[5]), dt)
    c_v = trapezoid_cumsum(velocity_rate(t, params[6], params[7], params[8]), dt)
    x_s = sample_fraction(t, params[9], params[10], params[11], params[12])
    return c_ref, c_sample, c_v, x_s


def pair_bracket(q, pf, c_ref_i, c_ref_j, c_s_i, c_s_j, c_v_i, c_v_j, xs_i, xs_j):
    """Normalised bracket B for pairs (i, j) given the grid quantities gathered at i and j.

    ``pf`` = q cos(phi + phi0) [1/A]; inputs broadcast against each other.
    """
    q2 = q * q
    integral_ref, integral_s = jnp.abs(c_ref_j - c_ref_i), jnp.abs(c_s_j - c_s_i)
    decay_ref = jnp.exp(-q2 * integral_ref)
    decay_s = jnp.exp(-q2 * integral_s)
    xr_i, xr_j = 1.0 - xs_i, 1.0 - xs_j
    cross = 2.0 * xr_i * xs_i * xr_j * xs_j * jnp.exp(-0.5 * q2 * (integral_ref + integral_s)) * jnp.cos(
        pf * (c_v_j - c_v_i))
    numerator = (xr_i * xr_j) ** 2 * decay_ref + (xs_i * xs_j) ** 2 * decay_s + cross
    return numerator / ((xr_i**2 + xs_i**2) * (xr_j**2 + xs_j**2))


def fraction_weights(x_s):
    """Normalised fraction weights a_r = x_r^2 / n, a_s = x_s^2 / n, a_c = x_r x_s / n with
    x_r = 1 - x_s and n = x_r^2 + x_s^2 >= 1/2 (dimensionless), so that
    B_ij = a_r,i a_r,j e^{-q^2 |I_r|} + a_s,i a_s,j e^{-q^2 |I_s|} + 2 a_c,i a_c,j (cross decay) cos(...)."""
    x_r = 1.0 - x_s
    norm = x_r**2 + x_s**2
    return x_r**2 / norm, x_s**2 / norm, x_r * x_s / norm


def phase_factor(q, phi_deg, phi0_deg):
    """q cos(phi + phi0) [1/A], angles in degrees."""
    return q * jnp.cos(jnp.deg2rad(phi_deg + phi0_deg))


#: block size of the meshgrid factorisation when no divisor of N fits (see :func:`meshgrid_c2`)
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
    return pair_bracket(q, pf, c_ref[col], c_ref[row], c_s[col], c_s[row], c_v[col], c_v[row],
                        x_s[col], x_s[row])


def _block_factors(q2, a_r, a_s, a_c, cos_t, sin_t, c_ref, c_s, blk, ref_ref, ref_s, mask, sign):
    """Row (npad, 4) and column (nb, 4, npad) factors of the pairs whose column j lies on the
    ``mask`` side of row block I, about the reference C values ``ref_ref[I]``, ``ref_s[I]``.

    sign = +1: references at the end of each block, pairs j after block I (C_i <= R <= C_j);
    sign = -1: references at the start, pairs j before block I (C_j <= R <= C_i). Every exponent
    is <= 0, so the factors never overflow.
    """
    d_row_r, d_row_s = sign * (ref_ref[blk] - c_ref), sign * (ref_s[blk] - c_s)
    row_c = 2.0 * a_c * jnp.exp(-0.5 * q2 * (d_row_r + d_row_s))
    row = jnp.stack([a_r * jnp.exp(-q2 * d_row_r), a_s * jnp.exp(-q2 * d_row_s),
                     row_c * cos_t, row_c * sin_t], axis=-1)
    d_col_r = jnp.where(mask, sign * (c_ref[None, :] - ref_ref[:, None]), 0.0)
    d_col_s = jnp.where(mask, sign * (c_s[None, :] - ref_s[:, None]), 0.0)
    col_c = a_c * jnp.exp(-0.5 * q2 * (d_col_r + d_col_s))
    col = jnp.stack([a_r * jnp.exp(-q2 * d_col_r), a_s * jnp.exp(-q2 * d_col_s),
                     col_c * cos_t, col_c * sin_t], axis=1)
    return row, jnp.where(mask[:, None, :], col, 0.0)


def meshgrid_c2(q, pf, c_ref, c_s, c_v, x_s, contrast, offset, block=None):
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
    block = block_size(n) if block is None else block
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
    row_after, col_after = _block_factors(*common, blk, c_ref[last], c_s[last],
                                          blk[None, :] > row_blocks[:, None], 1.0)
    row_before, col_before = _block_factors(*common, blk, c_ref[first], c_s[first],
                                            blk[None, :] < row_blocks[:, None], -1.0)
    rows = jnp.concatenate([contrast * row_after, contrast * row_before,
                            jnp.full((npad, 1), offset, dtype=row_after.dtype)], axis=-1)
    cols = jnp.concatenate([col_after, col_before, jnp.ones((nb, 1, npad), col_after.dtype)], axis=1)
    full = jnp.einsum("ibk,ikj->ibj", rows.reshape(nb, block, 9), cols)
    cr, cs, cv, xs = (a.reshape(nb, block) for a in (c_ref, c_s, c_v, x_s))
    ii, jj = (slice(None), slice(None), None), (slice(None), None, slice(None))
    diagonal = offset + contrast * pair_bracket(q, pf, cr[ii], cr[jj], cs[ii], cs[jj], cv[ii], cv[jj],
                                                xs[ii], xs[jj])
    full = full.reshape(nb, block, nb, block).at[row_blocks, :, row_blocks, :].set(diagonal)
    return full.reshape(npad, npad)[:n, :n]


def _meshgrid(params, t, q, dt, phi_angle, contrast, offset):
    c_ref, c_s, c_v, x_s = grid_quantities(params, t, dt)
    return meshgrid_c2(q, phase_factor(q, phi_angle, params[13]), c_ref, c_s, c_v, x_s, contrast, offset)


def _gathered(params, time_grid, q, dt, idx1, idx2, phase, contrast, offset):
    c_ref, c_s, c_v, x_s = grid_quantities(params, time_grid, dt)
    bracket = pair_bracket(q, phase, c_ref[idx1], c_ref[idx2], c_s[idx1], c_s[idx2],
                           c_v[idx1], c_v[idx2], x_s[idx1], x_s[idx2])
    return offset + contrast * bracket


@partial(jax.jit, static_argnames=("eval_strategy",))
def compute_c2_unified(params, q, dt, phi_angle=0.0, contrast=1.0, offset=1.0, *,
                       eval_strategy, t=None, shard_grid=None, time_grid=None, idx1=None,
                       idx2=None, phi_unique=None, phi_indices=None, contrast_arr=None,
                       offset_arr=None):
    """c2 of the heterodyne model by one of three evaluation strategies.

    * ``"meshgrid"``: needs ``t`` (N,); returns (N, N) at ``phi_angle`` with scalar
      ``contrast``/``offset``.
    * ``"elementwise"``: needs ``shard_grid`` (time_grid, idx1, idx2); returns (n_pairs,).
    * ``"pooled"``: needs ``time_grid``, ``idx1``, ``idx2``, ``phi_indices`` (n_total,) and
      ``phi_unique``, ``contrast_arr``, ``offset_arr`` (n_phi,); returns (n_total,) with
      c2[k] at phi_unique[phi_indices[k]], t1 = time_grid[idx1[k]], t2 = time_grid[idx2[k]].
      ``phi_angle``, ``contrast`` and ``offset`` are ignored.
    """
    if eval_strategy == "meshgrid":
        if t is None:
            raise ValueError("eval_strategy='meshgrid' needs t")
        return _meshgrid(params, t, q, dt, phi_angle, contrast, offset)
    if eval_strategy == "elementwise":
        if shard_grid is None:
            raise ValueError("eval_strategy='elementwise' needs shard_grid")
        return _gathered(params, shard_grid.time_grid, q, dt, shard_grid.idx1, shard_grid.idx2,
                         phase_factor(q, phi_angle, params[13]), contrast, offset)
    if eval_strategy == "pooled":
        needed = dict(time_grid=time_grid, idx1=idx1, idx2=idx2, phi_unique=phi_unique,
                      phi_indices=phi_indices, contrast_arr=contrast_arr, offset_arr=offset_arr)
        missing = [name for name, value in needed.items() if value is None]
        if missing:
            raise ValueError(f"eval_strategy='pooled' needs {', '.join(missing)}")
        phase = phase_factor(q, phi_unique, params[13])[phi_indices]
        return _gathered(params, time_grid, q, dt, idx1, idx2, phase,
                         contrast_arr[phi_indices], offset_arr[phi_indices])
    raise ValueError(f"eval_strategy must be 'meshgrid', 'elementwise' or 'pooled', got {eval_strategy!r}")
