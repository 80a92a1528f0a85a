"""The c2 kernels and the seed API against an independent NumPy/SciPy re-derivation, analytic
limits, the other evaluation strategies, finite differences and extreme parameters; the seed API
against the direct kernels (parity on random parameters)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from physics_fixtures import SMOOTH
from scipy.integrate import cumulative_trapezoid

from heterodyne.core import jax_backend as jb
from heterodyne.core.c2 import BLOCK, c2_map, c2_meshgrid, c2_pairs, c2_pooled
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, PARAMETERS, as_vector
from heterodyne.core.physics_cmc import compute_c2_elementwise, precompute_shard_grid
from heterodyne.core.physics_kernel import compute_c2_unified

Q = 0.012  # 1/A
DT = 0.1  # s
N = 150  # > 2 blocks of BLOCK = 64 and not a multiple of it
T = 0.5 + DT * np.arange(N)  # absolute times, s (t > 0: smooth in every parameter)
TRUTH = as_vector(SMOOTH)


# ---------------------------------------------------------------- NumPy re-derivation
def np_power(t, amplitude, exponent):
    out = np.zeros_like(t)
    out[t > 0] = amplitude * t[t > 0] ** exponent
    return out


def np_rates(p, t):
    j_ref = np.maximum(np_power(t, p[0], p[1]) + p[2], 0.0)
    j_s = np.maximum(np_power(t, p[3], p[4]) + p[5], 0.0)
    v = np_power(t, p[6], p[7]) + p[8]
    x_s = np.clip(p[9] * np.exp(np.minimum(p[10] * (t - p[11]), 700.0)) + p[12], 0.0, 1.0)
    return j_ref, j_s, v, x_s


def np_c2(p, t, q, dt, phi, contrast, offset, pairs=None):
    """c2 by the formula of the issue, integrals by scipy's cumulative trapezoid."""
    j_ref, j_s, v, x_s = np_rates(p, t)
    c_ref, c_s, c_v = (cumulative_trapezoid(r, dx=dt, initial=0.0) for r in (j_ref, j_s, v))
    i, j = pairs if pairs is not None else np.meshgrid(np.arange(len(t)), np.arange(len(t)), indexing="ij")
    ir, is_ = np.abs(c_ref[j] - c_ref[i]), np.abs(c_s[j] - c_s[i])
    iv = c_v[j] - c_v[i]
    xr = 1.0 - x_s
    num = (
        (xr[i] * xr[j]) ** 2 * np.exp(-q * q * ir)
        + (x_s[i] * x_s[j]) ** 2 * np.exp(-q * q * is_)
        + 2
        * xr[i]
        * x_s[i]
        * xr[j]
        * x_s[j]
        * np.exp(-q * q * (ir + is_) / 2)
        * np.cos(q * np.cos(np.deg2rad(phi + p[13])) * iv)
    )
    den = (xr[i] ** 2 + x_s[i] ** 2) * (xr[j] ** 2 + x_s[j] ** 2)
    return offset + contrast * num / den


@pytest.fixture(scope="module")
def data():
    """Noisy data at 3 angles from the NumPy model, with per-angle weights."""
    rng = np.random.default_rng(1)
    phis = np.array([0.0, 45.0, 90.0])
    contrasts, offsets = np.array([0.2, 0.25, 0.18]), np.array([1.0, 1.01, 0.99])
    c2 = np.stack([np_c2(TRUTH, T, Q, DT, ph, c, o) for ph, c, o in zip(phis, contrasts, offsets, strict=True)])
    c2 = c2 + rng.normal(0, 0.01, c2.shape)
    w = np.broadcast_to(1.0 / np.array([0.01, 0.02, 0.015])[:, None, None] ** 2, c2.shape).copy()
    return phis, contrasts, offsets, c2, w


# ---------------------------------------------------------------- every public function vs NumPy
def test_rates_fraction_and_g1_match_numpy():
    j_ref, _, v, x_s = np_rates(TRUTH, T)
    t0 = np.concatenate([[0.0], T])  # t = 0 gives t^alpha := 0
    np.testing.assert_allclose(jb.compute_transport_jit(T, 600.0, 0.4, 40.0, N), j_ref, rtol=1e-14)
    assert float(jb.compute_transport_jit(t0, 600.0, 0.4, 40.0, N + 1)[0]) == 40.0
    assert float(jb.compute_transport_jit(t0, 600.0, 0.4, -40.0, N + 1)[0]) == 0.0  # max(., 0)
    np.testing.assert_allclose(jb.compute_fraction_jit(T, *TRUTH[9:13]), x_s, rtol=1e-14)
    np.testing.assert_allclose(jb.compute_g1_transport(j_ref, Q), np.exp(-Q * Q * j_ref), rtol=1e-14)
    assert float(jb.compute_fraction_jit(jnp.array([1e4]), 1.0, 10.0, 0.0, 0.0)[0]) == 1.0  # capped, clipped
    c_v = cumulative_trapezoid(v, dx=DT, initial=0.0)
    np.testing.assert_allclose(
        jb.compute_velocity_integral_matrix(T, *TRUTH[6:9], DT), c_v[None, :] - c_v[:, None], rtol=1e-12, atol=1e-12
    )
    c_r = cumulative_trapezoid(j_ref, dx=DT, initial=0.0)
    np.testing.assert_allclose(
        jb.compute_transport_integral_matrix(T, *TRUTH[0:3], DT),
        np.abs(c_r[None, :] - c_r[:, None]),
        rtol=1e-12,
        atol=1e-9,
    )


@pytest.mark.parametrize("phi", [0.0, 37.0, 90.0, -150.0])
def test_meshgrid_matches_numpy(phi):
    expected = np_c2(TRUTH, T, Q, DT, phi, 0.2, 1.0)
    got = np.asarray(jb.compute_c2_heterodyne(TRUTH, T, Q, DT, phi, 0.2, 1.0))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [BLOCK - 1, 131, 160])
def test_meshgrid_block_layouts_match_numpy(n):
    """One direct block (n < BLOCK), a padded grid (prime n) and evenly divided blocks."""
    t = 0.2 + DT * np.arange(n)
    p = TRUTH.copy()
    p[INDEX["D0_sample"]] = 2e6  # q^2 C reaches ~3e3: a single reference point would overflow e^{q^2 C}
    got = np.asarray(jb.compute_c2_heterodyne(p, t, Q, DT, 20.0, 0.3, 1.0))
    np.testing.assert_allclose(got, np_c2(p, t, Q, DT, 20.0, 0.3, 1.0), rtol=0, atol=1e-12)


def test_all_strategies_agree(data):
    phis, contrasts, offsets, _, _ = data
    stack = np.asarray(jb.compute_c2_heterodyne_multiphi(TRUTH, T, Q, DT, phis, contrasts, offsets))
    for a in range(3):
        np.testing.assert_allclose(
            stack[a], np_c2(TRUTH, T, Q, DT, phis[a], contrasts[a], offsets[a]), rtol=0, atol=1e-12
        )
    rng = np.random.default_rng(0)
    idx1, idx2 = rng.integers(0, N, 500), rng.integers(0, N, 500)
    phi_idx = rng.integers(0, 3, 500)
    pooled = np.asarray(jb.compute_c2_heterodyne_pooled(TRUTH, T, Q, DT, idx1, idx2, phi_idx, phis, contrasts, offsets))
    np.testing.assert_allclose(pooled, stack[phi_idx, idx1, idx2], rtol=0, atol=1e-12)
    grid = precompute_shard_grid(T, idx1, idx2)
    elementwise = np.asarray(compute_c2_elementwise(TRUTH, grid, Q, DT, phis[1], contrasts[1], offsets[1]))
    np.testing.assert_allclose(elementwise, stack[1, idx1, idx2], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        elementwise, np_c2(TRUTH, T, Q, DT, phis[1], contrasts[1], offsets[1], pairs=(idx1, idx2)), rtol=0, atol=1e-12
    )
    with pytest.raises(ValueError, match="needs"):
        compute_c2_unified(TRUTH, Q, DT, eval_strategy="pooled", time_grid=T)


def test_pair_kernel_matches_numpy(data):
    phis, contrasts, offsets, _, _ = data
    rng = np.random.default_rng(4)
    rows, cols = rng.integers(0, N, 300), rng.integers(0, N, 300)
    got = np.asarray(c2_pairs(TRUTH, T, Q, DT, phis, rows, cols, contrasts, offsets))
    assert got.shape == (3, 300)
    for a in range(3):
        expected = np_c2(TRUTH, T, Q, DT, phis[a], contrasts[a], offsets[a], pairs=(rows, cols))
        np.testing.assert_allclose(got[a], expected, rtol=0, atol=1e-12)


def random_case(seed):
    """Random parameters (TRUTH scaled by 0.5..1.5 each), 3 angles [deg], contrasts, offsets and 400
    pooled points (angle index, idx1, idx2)."""
    rng = np.random.default_rng(seed)
    p = TRUTH * rng.uniform(0.5, 1.5, 14)
    phis, contrasts, offsets = rng.uniform(-180, 180, 3), rng.uniform(0.05, 0.5, 3), rng.uniform(0.9, 1.1, 3)
    points = rng.integers(0, 3, 400), rng.integers(0, N, 400), rng.integers(0, N, 400)
    return p, phis, contrasts, offsets, points


def assert_parity(public, direct):
    np.testing.assert_allclose(np.asarray(public), np.asarray(direct), rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_seed_api_maps_match_the_direct_kernels(seed):
    """The public (heterodyne 2.0.1) map functions equal the kernels of heterodyne.core.c2 that the
    package calls, at random parameters, angles, contrasts and offsets; so do the residuals."""
    p, phis, contrasts, offsets, _ = random_case(seed)
    maps = c2_meshgrid(p, T, Q, DT, phis, contrasts, offsets)
    assert_parity(jb.compute_c2_heterodyne_multiphi(p, T, Q, DT, phis, contrasts, offsets), maps)
    single = c2_map(p, T, Q, DT, phis[0], contrasts[0], offsets[0])
    assert_parity(single, maps[0])
    assert_parity(jb.compute_c2_heterodyne(p, T, Q, DT, phis[0], contrasts[0], offsets[0]), single)
    assert_parity(
        compute_c2_unified(p, Q, DT, phis[0], contrasts[0], offsets[0], eval_strategy="meshgrid", t=T), single
    )
    rng = np.random.default_rng(seed)
    data = np.asarray(single) + rng.normal(0, 0.01, (N, N))
    weights = rng.uniform(1e3, 1e4, (N, N))
    i, j = np.triu_indices(N, k=1)
    expected = (np.asarray(single) - data)[i, j] * np.sqrt(weights[i, j])
    residuals = jb.compute_residuals(p, T, Q, DT, phis[0], data, weights, contrasts[0], offsets[0])
    np.testing.assert_allclose(np.asarray(residuals), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1])
def test_seed_api_points_match_the_direct_kernels(seed):
    """The public pooled and element-wise functions equal c2_pooled at random parameters and points."""
    p, phis, contrasts, offsets, (phi_idx, idx1, idx2) = random_case(seed)
    pooled = c2_pooled(p, T, Q, DT, phis, phi_idx, idx1, idx2, contrasts, offsets)
    assert_parity(jb.compute_c2_heterodyne_pooled(p, T, Q, DT, idx1, idx2, phi_idx, phis, contrasts, offsets), pooled)
    assert_parity(
        compute_c2_unified(
            p,
            Q,
            DT,
            eval_strategy="pooled",
            time_grid=T,
            idx1=idx1,
            idx2=idx2,
            phi_unique=phis,
            phi_indices=phi_idx,
            contrast_arr=contrasts,
            offset_arr=offsets,
        ),
        pooled,
    )
    one_angle = c2_pooled(p, T, Q, DT, phis[1:2], np.zeros(400, int), idx1, idx2, contrasts[1:2], offsets[1:2])
    grid = precompute_shard_grid(T, idx1, idx2)
    assert_parity(compute_c2_elementwise(p, grid, Q, DT, phis[1], contrasts[1], offsets[1]), one_angle)
    assert_parity(
        compute_c2_unified(p, Q, DT, phis[1], contrasts[1], offsets[1], eval_strategy="elementwise", shard_grid=grid),
        one_angle,
    )


def test_residuals_and_chi_squared_match_numpy(data):
    phis, contrasts, offsets, c2, w = data
    i, j = np.triu_indices(N, k=1)
    model = np_c2(TRUTH, T, Q, DT, phis[1], contrasts[1], offsets[1])
    expected = (model - c2[1])[i, j] * np.sqrt(w[1][i, j])
    args = (TRUTH, T, Q, DT, phis[1], c2[1], w[1], contrasts[1], offsets[1])
    r = np.asarray(jb.compute_residuals(*args))
    assert r.shape == (N * (N - 1) // 2,)  # each unordered pair once, no diagonal
    np.testing.assert_allclose(r, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(float(jb.compute_chi_squared(*args)), np.sum(expected**2), rtol=1e-10)
    unweighted = np.asarray(jb.compute_residuals(TRUTH, T, Q, DT, phis[1], c2[1], None, contrasts[1], offsets[1]))
    np.testing.assert_allclose(unweighted, (model - c2[1])[i, j], rtol=1e-9, atol=1e-11)
    multi = np.asarray(jb.compute_multi_angle_residuals(TRUTH, T, Q, DT, phis, c2, w, contrasts, offsets))
    expected_multi = np.concatenate(
        [
            (np_c2(TRUTH, T, Q, DT, phis[a], contrasts[a], offsets[a]) - c2[a])[i, j] * np.sqrt(w[a][i, j])
            for a in range(3)
        ]
    )
    np.testing.assert_allclose(multi, expected_multi, rtol=1e-9, atol=1e-9)


def test_batch_chi_squared_chunks_match_single_evaluations(data):
    phis, contrasts, offsets, c2, w = data
    rng = np.random.default_rng(3)
    batch = TRUTH * (1 + 0.05 * rng.standard_normal((5, 14)))
    args = (T, Q, DT, phis[0], c2[0], w[0], contrasts[0], offsets[0])
    got = np.asarray(jb.batch_chi_squared(batch, *args, chunk_size=2))
    i, j = np.triu_indices(N, k=1)
    expected = [
        np.sum(((np_c2(p, T, Q, DT, phis[0], contrasts[0], offsets[0]) - c2[0]) ** 2 * w[0])[i, j]) for p in batch
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(jb.batch_chi_squared(batch, *args)), expected, rtol=1e-10)


# ---------------------------------------------------------------- analytic limits
def test_constant_rates_give_equilibrium_closed_form():
    """alpha = beta = f1 = 0 and t > 0: J, v, x_s constant, so with tau = |t_j - t_i|
    c2 = offset + contrast [x_r^4 e^{-q^2 J_r tau} + x_s^4 e^{-q^2 J_s tau}
         + 2 x_r^2 x_s^2 e^{-q^2 (J_r + J_s) tau / 2} cos(q cos(phi + phi0) v tau)] / (x_r^2 + x_s^2)^2."""
    p = as_vector(
        dict(
            D0_ref=300.0,
            alpha_ref=0.0,
            D_offset_ref=50.0,
            D0_sample=900.0,
            alpha_sample=0.0,
            D_offset_sample=0.0,
            v0=20.0,
            beta=0.0,
            v_offset=4.0,
            f0=0.35,
            f1=0.0,
            f2=0.0,
            f3=0.0,
            phi0=10.0,
        )
    )
    phi = 25.0
    tau = np.abs(T[None, :] - T[:, None])
    xs, xr = 0.35, 0.65
    jr, js, v = 350.0, 900.0, 24.0
    expected = (
        1.0
        + 0.3
        * (
            xr**4 * np.exp(-Q * Q * jr * tau)
            + xs**4 * np.exp(-Q * Q * js * tau)
            + 2
            * xr**2
            * xs**2
            * np.exp(-Q * Q * (jr + js) * tau / 2)
            * np.cos(Q * np.cos(np.deg2rad(phi + 10.0)) * v * tau)
        )
        / (xr**2 + xs**2) ** 2
    )
    np.testing.assert_allclose(jb.compute_c2_heterodyne(p, T, Q, DT, phi, 0.3, 1.0), expected, rtol=0, atol=1e-12)


def test_diagonal_symmetry_periodicity_and_reference_only_limit():
    c2 = np.asarray(jb.compute_c2_heterodyne(TRUTH, T, Q, DT, 33.0, 0.22, 1.03))
    np.testing.assert_allclose(np.diag(c2), 1.03 + 0.22, rtol=0, atol=1e-14)  # c2(t, t)
    np.testing.assert_allclose(c2, c2.T, rtol=0, atol=1e-15)
    for shift in (360.0, -720.0):
        np.testing.assert_allclose(
            jb.compute_c2_heterodyne(TRUTH, T, Q, DT, 33.0 + shift, 0.22, 1.03), c2, rtol=0, atol=1e-12
        )
    ref_only = TRUTH.copy()
    ref_only[INDEX["f0"]] = ref_only[INDEX["f3"]] = 0.0  # x_s = 0
    c_r = cumulative_trapezoid(np_rates(TRUTH, T)[0], dx=DT, initial=0.0)
    expected = 1.0 + 0.2 * np.exp(-Q * Q * np.abs(c_r[None, :] - c_r[:, None]))
    np.testing.assert_allclose(
        jb.compute_c2_heterodyne(ref_only, T, Q, DT, 60.0, 0.2, 1.0), expected, rtol=0, atol=1e-12
    )


# ---------------------------------------------------------------- derivatives
def test_gradient_and_hessian_match_central_differences(data):
    phis, contrasts, offsets, c2, w = data
    args = (T, Q, DT, phis[1], c2[1], w[1], contrasts[1], offsets[1])
    chi2 = lambda p: float(jb.compute_chi_squared(jnp.asarray(p), *args))  # noqa: E731
    grad = np.asarray(jb.compute_chi_squared_grad(TRUTH, *args))
    hess = np.asarray(jb.compute_chi_squared_hessian(TRUTH, *args))
    for k, name in enumerate(PARAMETER_NAMES):
        h = 1e-6 * max(abs(TRUTH[k]), 1e-2)
        e = np.zeros(14)
        e[k] = h
        fd = (chi2(TRUTH + e) - chi2(TRUTH - e)) / (2 * h)
        np.testing.assert_allclose(grad[k], fd, rtol=1e-5, atol=1e-6 * np.abs(grad).max(), err_msg=name)
        fd_row = (
            np.asarray(jb.compute_chi_squared_grad(TRUTH + e, *args))
            - np.asarray(jb.compute_chi_squared_grad(TRUTH - e, *args))
        ) / (2 * h)
        np.testing.assert_allclose(hess[k], fd_row, rtol=1e-4, atol=1e-5 * np.abs(hess).max(), err_msg=name)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-8, atol=1e-8 * np.abs(hess).max())


def test_residual_jacobian_matches_central_differences(data):
    phis, contrasts, offsets, c2, w = data
    args = (T, Q, DT, phis[2], c2[2], w[2], contrasts[2], offsets[2])
    jac = np.asarray(jb.compute_residuals_jacobian(TRUTH, *args))
    assert jac.shape == (N * (N - 1) // 2, 14)
    for k in range(14):
        h = 1e-6 * max(abs(TRUTH[k]), 1e-2)
        e = np.zeros(14)
        e[k] = h
        fd = (
            np.asarray(jb.compute_residuals(TRUTH + e, *args)) - np.asarray(jb.compute_residuals(TRUTH - e, *args))
        ) / (2 * h)
        np.testing.assert_allclose(
            jac[:, k], fd, rtol=1e-4, atol=1e-6 * np.abs(jac[:, k]).max() + 1e-12, err_msg=PARAMETER_NAMES[k]
        )


# ---------------------------------------------------------------- robustness
def test_no_nan_or_inf_at_extreme_parameters():
    """Corners of the bounds (exponents, offsets, prefactors), t = 0 on the grid, large D0 so the
    exponentials underflow: c2 and its gradient stay finite, and c2 stays within
    [offset - contrast, offset + contrast] since |B| <= 1."""
    t = DT * np.arange(BLOCK + 20)  # starts at t = 0, spans two blocks
    c2_data = np.ones((len(t), len(t)))
    grad_fn = jax.jit(
        jax.grad(lambda p: jb.compute_chi_squared(p, t, 0.1, DT, 45.0, c2_data, jnp.ones_like(c2_data), 0.3, 1.0))
    )
    c2_fn = jax.jit(lambda p: jb.compute_c2_heterodyne(p, t, 0.1, DT, 45.0, 0.3, 1.0))
    lower = np.array([p.lower for p in PARAMETERS])
    upper = np.array([p.upper for p in PARAMETERS])
    base = TRUTH.copy()
    count = 0
    for d0, alpha, d_off, v0, beta, f1 in itertools.product(
        (lower[0], upper[0]),
        (lower[1], upper[1]),
        (lower[2], upper[2]),
        (lower[6], upper[6]),
        (lower[7], upper[7]),
        (lower[10], upper[10]),
    ):
        p = base.copy()
        p[[0, 3]], p[[1, 4]], p[[2, 5]] = d0, alpha, d_off
        p[6], p[7], p[10] = v0, beta, f1
        c2 = np.asarray(c2_fn(p))
        assert np.isfinite(c2).all()
        assert c2.min() >= 1.0 - 0.3 - 1e-12 and c2.max() <= 1.0 + 0.3 + 1e-12
        assert np.isfinite(np.asarray(grad_fn(p))).all()
        count += 1
    assert count == 64
