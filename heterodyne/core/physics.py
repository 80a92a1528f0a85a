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

The c2 kernels of :mod:`heterodyne.core.c2` (maps, pairs, pooled points) and the per-angle sums
of :mod:`heterodyne.core.pooled_likelihood` (the Consensus Monte Carlo likelihood, with a
hand-written gradient) are built from these functions.
"""

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
    cross = (
        2.0
        * xr_i
        * xs_i
        * xr_j
        * xs_j
        * jnp.exp(-0.5 * q2 * (integral_ref + integral_s))
        * jnp.cos(pf * (c_v_j - c_v_i))
    )
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
