"""CMC model: the shared sampling coordinates, priors raised to 1/K, the pooled likelihood and the
shard geometry, checked against NumPy/SciPy re-derivations of the documented formulas."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from cmc_fixtures import PHI, SIGMA, WEIGHTS, Q, c2_maps, nlsq_record, simulated_dataset

from heterodyne.cmc import sampling
from heterodyne.cmc.coordinates import (
    IDENTITY,
    LOG,
    LOGIT,
    LOWER,
    UPPER,
    build_coordinates,
    choose_kind,
    theta_draws,
    theta_from_y,
    y_from_theta,
)
from heterodyne.cmc.model import LOG_NOISE_SCALE_PRIOR_SD, build_model_spec, log_density
from heterodyne.cmc.pooling import pooled_points, shard_labels
from heterodyne.cmc.sampling import NutsSettings, conditional_draws, shard_data, shard_geometry, start_position
from heterodyne.cmc.truncated_gaussian import box_truncated_draws
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES
from heterodyne.errors import InputError

K = 3
PRIOR = {
    "default": {"kind": "truncated-normal", "width": 4.0, "width_unit": "stderr"},
    "parameters": {"v0": {"kind": "uniform", "width": 2.0, "width_unit": "absolute"}},
}


@pytest.fixture(scope="module")
def problem():
    dataset = simulated_dataset()
    nlsq = nlsq_record(dataset)
    spec, info = build_model_spec(nlsq, PRIOR, dataset.t, Q, len(PHI), K)
    points = pooled_points(dataset.c2, dataset.valid)
    mine = points.take(shard_labels(points, K, 0) == 1)
    data = shard_data(dataset, WEIGHTS, mine, len(mine) + 5, K)  # 5 masked padding points
    return dataset, nlsq, spec, info, mine, data


def test_choose_kind_follows_the_distance_to_the_bounds():
    assert choose_kind("D0_ref", 100.0, 10.0, 0.0, 1e7) == LOG
    assert choose_kind("D0_ref", 20.0, 10.0, 0.0, 1e7) == LOWER  # 2 widths above 0: no log
    assert choose_kind("v0", 100.0, 10.0, -1e5, 1e5) == IDENTITY  # velocities are never logged
    assert choose_kind("v0", 20.0, 10.0, 0.0, 1e5) == LOWER  # the sign carrier near its bound 0
    assert choose_kind("v0", 100.0, 10.0, 0.0, 1e5) == IDENTITY
    assert choose_kind("f0", 0.95, 0.02, 0.0, 1.0) == UPPER
    assert choose_kind("f0", 0.5, 0.1, 0.0, 1.0) == LOGIT


MIXTURE_NAMES = ["D0_ref", "alpha_ref", "D0_sample", "alpha_sample", "v0", "f0", "contrast_0"]


def mixture_coordinates():
    centre = np.array([3000.0, 0.1, 9000.0, 0.1, 5.0, 0.4, 0.2])
    stderr = np.array([300.0, 0.01, 900.0, 0.01, 3.0, 0.05, 0.01])
    lower = np.array([0.0, -2.0, 0.0, -2.0, -1e5, 0.0, 0.0])
    upper = np.array([1e7, 2.0, 1e7, 2.0, 1e5, 1.0, 1.0])
    return build_coordinates(
        MIXTURE_NAMES,
        ["D0_ref", "alpha_ref", "D0_sample", "alpha_sample", "v0", "f0", "contrast"],
        centre,
        stderr,
        lower,
        upper,
        {"f3": 0.05, "D_offset_ref": 10.0},
        np.linspace(1.0, 20.0, 60),
        0.005,
        4,
        "f0",
    )


def finite_difference_log_jacobian(y, coords):
    """log |det d theta / d y| at ``y`` from central finite differences of theta_from_y."""
    step = 1e-6 * np.maximum(1.0, np.abs(y))
    columns = [
        (
            np.asarray(theta_from_y(jnp.asarray(y + step[k] * e), coords)[0])
            - np.asarray(theta_from_y(jnp.asarray(y - step[k] * e), coords)[0])
        )
        / (2 * step[k])
        for k, e in enumerate(np.eye(len(y)))
    ]
    return np.linalg.slogdet(np.stack(columns, axis=1))[1]


def test_coordinates_round_trip_and_jacobian():
    """theta(y(theta)) = theta; log |d theta / d y| equals the log determinant of a central
    finite-difference Jacobian; the mixture block puts the slower component first."""
    coords = mixture_coordinates()
    assert list(coords.mixture) == [0, 2, 5]
    theta = np.array([2500.0, 0.12, 11000.0, 0.08, -3.0, 0.45, 0.21])
    y = y_from_theta(theta, coords)
    back, log_jac = theta_from_y(jnp.asarray(y), coords)
    np.testing.assert_allclose(np.asarray(back), theta, rtol=1e-10)
    assert float(log_jac) == pytest.approx(finite_difference_log_jacobian(y, coords), abs=1e-5)
    # any y maps inside the support: J_ref(t_m) < J_sample(t_m), 0 < x_s < 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        th = np.asarray(theta_from_y(jnp.asarray(y + rng.normal(0, 2, len(y))), coords)[0])
        t_m = float(coords.t_mean)
        j_ref = th[0] * t_m ** th[1] + 10.0
        assert 0 < j_ref < th[2] * t_m ** th[3] and 0 < th[5] + 0.05 < 1 and th[6] > 0


def test_sign_carrying_velocity_near_zero_has_a_soft_wall_at_zero(problem):
    """build_model_spec gives the velocity that carries the sign (v0) the lower bound 0; near it
    v0 = w softplus(y / w), w = sqrt(K) s: round trip, log |d theta / d y| against finite
    differences, and v0 >= 0 for every y (also far into the wall)."""
    dataset, nlsq, *_ = problem
    nlsq = copy.deepcopy(nlsq)
    nlsq["parameters"]["v0"].update(value=6.0, stderr=3.0)
    normal_prior = {"default": PRIOR["default"], "parameters": {}}
    spec, info = build_model_spec(nlsq, normal_prior, dataset.t, Q, len(PHI), K)
    m = info.names.index("v0")
    coords = spec.coords
    assert coords.kind[m] == LOWER and coords.eta_low[m] == 0.0
    assert coords.width[m] == pytest.approx(np.sqrt(K) * 3.0)
    centre = spec.prior.centre
    for v0 in (1e-3, 0.7, 6.0, 40.0):
        theta = centre.copy()
        theta[m] = v0
        y = y_from_theta(theta, coords)
        back, log_jac = theta_from_y(jnp.asarray(y), coords)
        assert float(back[m]) == pytest.approx(v0, rel=1e-9)
        assert float(log_jac) == pytest.approx(finite_difference_log_jacobian(y, coords), abs=1e-6)
    y = y_from_theta(centre, coords)
    y[m] = -1e4
    assert float(theta_from_y(jnp.asarray(y), coords)[0][m]) >= 0.0


def _log_integral_over_scaling(observed, bracket, sigma, mu, sd):
    """log of the integral over (offset, contrast) of prod_k N(observed_k; o + c B_k, sigma_k) times
    the unnormalised prior exp(-((o - mu_o)^2 / sd_o^2 + (c - mu_c)^2 / sd_c^2) / (2 K)), by a
    161 x 161 trapezoid grid over +-9 sd of the integrand (NumPy; exact to ~1e-10 for this
    Gaussian integrand)."""

    def log_joint(o, c):
        resid = observed[None, :] - o[:, None] - c[:, None] * bracket[None, :]
        return (
            scipy.stats.norm.logpdf(resid, 0.0, sigma[None, :]).sum(axis=1)
            - 0.5 * ((o - mu[0]) ** 2 / sd[0] ** 2 + (c - mu[1]) ** 2 / sd[1] ** 2) / K
        )

    design = np.stack([np.ones_like(bracket), bracket], axis=1) / sigma[:, None]
    prior_rows = np.diag(1.0 / (np.sqrt(K) * sd))
    lhs = np.vstack([design, prior_rows])
    rhs = np.concatenate([observed / sigma, mu / (np.sqrt(K) * sd)])
    best = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    eigenvalues, vectors = np.linalg.eigh(lhs.T @ lhs)
    u = np.linspace(-9.0, 9.0, 161)
    grid = np.stack(np.meshgrid(u, u, indexing="ij"), axis=-1).reshape(-1, 2)
    beta = best + grid @ (vectors / np.sqrt(eigenvalues)).T
    peak = log_joint(best[:1], best[1:])[0]
    values = np.exp(log_joint(beta[:, 0], beta[:, 1]) - peak).reshape(161, 161)
    area = np.trapezoid(np.trapezoid(values, u, axis=1), u) / np.sqrt(np.prod(eigenvalues))
    return peak + np.log(area)


def _numpy_log_density(y, dataset, nlsq, spec, info, points, log_noise_scale=None):
    """The module docstring's log density of the sampled physics coordinates y: the joint density
    integrated numerically over each angle's offset and contrast, log |d theta / d y| from finite
    differences; plus the constants that log_density drops (n_phi log 2 pi - n/2 log 2 pi)."""
    coords = spec.physics_coords
    theta = np.asarray(theta_from_y(jnp.asarray(y), coords)[0])
    log_jac = finite_difference_log_jacobian(y, coords)
    params = np.array([nlsq["parameters"][name]["value"] for name in PARAMETER_NAMES])
    for m, name in enumerate(info.free_names):
        params[INDEX[name]] = theta[m]
    n_free, n_phi = len(info.free_names), len(PHI)
    brackets = c2_maps(params, np.ones(n_phi), np.zeros(n_phi), dataset.t)
    sigma = SIGMA * (np.exp(log_noise_scale) if log_noise_scale is not None else 1.0)
    prior = spec.prior
    total = 0.0
    for a in range(n_phi):
        mine = points.phi_index == a
        i, j = points.idx1[mine], points.idx2[mine]
        mu = prior.centre[[n_free + n_phi + a, n_free + a]]
        sd = prior.sd[[n_free + n_phi + a, n_free + a]]
        total += _log_integral_over_scaling(dataset.c2[a, i, j], brackets[a, i, j], np.full(len(i), sigma[a]), mu, sd)
    physics = slice(0, n_free)
    inside = np.all((theta >= prior.low[physics]) & (theta <= prior.high[physics]))
    log_prior = np.sum(
        np.where(prior.normal[physics], -0.5 * ((theta - prior.centre[physics]) / prior.sd[physics]) ** 2, 0.0)
    )
    total += log_jac + (log_prior if inside else -np.inf) / K
    if log_noise_scale is not None:
        total += (
            scipy.stats.norm.logpdf(log_noise_scale, scale=LOG_NOISE_SCALE_PRIOR_SD)
            + np.log(np.sqrt(2 * np.pi) * LOG_NOISE_SCALE_PRIOR_SD)
        ) / K  # up to its constant
    return total - n_phi * np.log(2 * np.pi) + 0.5 * np.log(2 * np.pi) * len(points)


def test_log_density_matches_numpy_rederivation(problem):
    """log_density (offsets and contrasts integrated out in closed form) equals the joint density
    integrated over them numerically, at the NLSQ result and at random positions."""
    dataset, nlsq, spec, info, points, data = problem
    y0 = start_position(spec, sample_noise_scale=False)
    n_free = len(info.free_names)
    rng = np.random.default_rng(5)
    for _ in range(3):
        y = y0 + rng.normal(0, 0.5, len(y0)) * np.sqrt(K) * spec.prior.stderr[:n_free] * np.where(
            spec.physics_coords.kind == LOG, 1 / spec.prior.centre[:n_free], 1.0
        )
        expected = _numpy_log_density(y, dataset, nlsq, spec, info, points)
        assert float(log_density(jnp.asarray(y), data, spec)) == pytest.approx(expected, rel=1e-9)
    with_noise = np.append(y0, 0.2)
    expected = _numpy_log_density(y0, dataset, nlsq, spec, info, points, log_noise_scale=0.2)
    assert float(log_density(jnp.asarray(with_noise), data, spec)) == pytest.approx(expected, rel=1e-9)


def test_conditional_draws_of_offset_and_contrast(problem):
    """Offsets and contrasts drawn given the physics have the mean and covariance of their Gaussian
    conditional (weighted least squares with the prior as extra rows, in NumPy)."""
    dataset, nlsq, spec, info, points, data = problem
    y0 = start_position(spec, sample_noise_scale=False)
    n_free, n_phi = len(info.free_names), len(PHI)
    draws = conditional_draws(np.tile(y0, (4000, 1)), data, spec, np.random.default_rng(3))
    theta = theta_draws(draws, spec.coords)
    np.testing.assert_allclose(draws[:, :n_free], np.tile(y0, (4000, 1)))  # the physics stay
    params = np.array([nlsq["parameters"][name]["value"] for name in PARAMETER_NAMES])
    params[[INDEX[name] for name in info.free_names]] = theta[0, :n_free]
    brackets = c2_maps(params, np.ones(n_phi), np.zeros(n_phi), dataset.t)
    prior = spec.prior
    for a in range(n_phi):
        mine = points.phi_index == a
        i, j = points.idx1[mine], points.idx2[mine]
        scale = np.sqrt(K) * prior.sd[[n_free + n_phi + a, n_free + a]]
        lhs = np.vstack([np.stack([np.ones(len(i)), brackets[a, i, j]], axis=1) / SIGMA[a], np.diag(1 / scale)])
        rhs = np.concatenate([dataset.c2[a, i, j] / SIGMA[a], prior.centre[[n_free + n_phi + a, n_free + a]] / scale])
        mean = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        covariance = np.linalg.inv(lhs.T @ lhs)
        got = theta[:, [n_free + n_phi + a, n_free + a]]  # (offset, contrast)
        sd = np.sqrt(np.diag(covariance))
        np.testing.assert_array_less(np.abs(got.mean(axis=0) - mean), 4 * sd / np.sqrt(len(got)))
        np.testing.assert_allclose(got.std(axis=0), sd, rtol=0.05)
        assert np.corrcoef(got.T)[0, 1] == pytest.approx(covariance[0, 1] / np.prod(sd), abs=0.05)


def test_uniform_prior_narrows_the_support(problem):
    _, nlsq, spec, info, _, _ = problem
    m = info.names.index("v0")
    centre = nlsq["parameters"]["v0"]["value"]
    assert (spec.prior.low[m], spec.prior.high[m]) == pytest.approx((centre - 2.0, centre + 2.0))
    assert not spec.prior.normal[m]


def test_geometry_whitens_the_shard_posterior(problem):
    """At the shard's mode the gradient vanishes and, in z = L^-1 (y - y_hat), the Hessian of
    -log p is close to the identity (the Gauss-Newton metric is right), and the log noise scale gets
    variance 1 / (2 n_points) (Fisher information of log sigma). The Hessian is the central
    difference of the exact gradient along each z axis (step 1e-4 sd: error ~1e-8, far below the
    0.15 asserted; a second reverse pass through the pooled kernel compiles for over a minute)."""
    _, _, spec, _, points, data = problem
    whitening = shard_geometry(data, spec, sample_noise_scale=True)
    chol = whitening.chol
    grad_y = jax.jit(lambda y: jax.grad(log_density)(y, data, spec))

    def grad_z(z):
        return chol.T @ np.asarray(grad_y(jnp.asarray(whitening.y_hat + chol @ z)))

    dim, step = len(whitening.y_hat), 1e-4
    assert np.max(np.abs(grad_z(np.zeros(dim)))) < 1e-3
    whitened = -np.column_stack([(grad_z(step * e) - grad_z(-step * e)) / (2 * step) for e in np.eye(dim)])
    np.testing.assert_allclose(whitened, np.eye(dim), atol=0.15)
    variance = chol @ chol.T
    assert variance[-1, -1] == pytest.approx(1 / (2 * len(points)), rel=0.05)


def test_free_quantity_without_stderr_is_an_input_error(problem):
    dataset, nlsq, *_ = problem
    nlsq = copy.deepcopy(nlsq)
    nlsq["parameters"]["v0"]["stderr"] = None
    with pytest.raises(InputError, match="'v0' has standard error nan"):
        build_model_spec(nlsq, PRIOR, dataset.t, Q, len(PHI), K, source="results/x/nlsq.json")


def test_wrong_number_of_contrasts_is_an_input_error(problem):
    dataset, nlsq, *_ = problem
    nlsq = copy.deepcopy(nlsq)
    nlsq["contrast"] = nlsq["contrast"][:1]
    with pytest.raises(InputError, match="must hold 2 values"):
        build_model_spec(nlsq, PRIOR, dataset.t, Q, len(PHI), K)


def test_uniform_prior_on_contrast_is_an_input_error(problem):
    """Contrast and offset are integrated out in closed form, which needs their normal prior."""
    dataset, nlsq, *_ = problem
    prior = copy.deepcopy(PRIOR)
    prior["parameters"]["contrast"] = {"kind": "uniform", "width": 3.0, "width_unit": "stderr"}
    with pytest.raises(InputError, match="'contrast' has prior kind 'uniform'.*truncated-normal"):
        build_model_spec(nlsq, prior, dataset.t, Q, len(PHI), K)


def test_nlsq_bounds_override_the_registry(problem):
    dataset, nlsq, *_ = problem
    spec, info = build_model_spec(nlsq, PRIOR, dataset.t, Q, len(PHI), K, bounds={"f0": [0.1, 0.9]})
    m = info.names.index("f0")
    assert (spec.prior.low[m], spec.prior.high[m]) == (0.1, 0.9)


def test_a_quantity_at_its_bound_starts_inside(problem):
    """An NLSQ value on a bound (f0 = 0 here) maps to y = -inf; the start moves it 0.1 stderr inside,
    where the shard's log density is finite."""
    dataset, nlsq, _, _, _, data = problem
    nlsq = copy.deepcopy(nlsq)
    nlsq["parameters"]["f0"]["value"] = 0.0
    spec, info = build_model_spec(nlsq, PRIOR, dataset.t, Q, len(PHI), K)
    assert np.isneginf(y_from_theta(spec.prior.centre, spec.coords)[info.names.index("f0")])
    y = start_position(spec, sample_noise_scale=False)
    theta = np.asarray(theta_from_y(jnp.asarray(y), spec.physics_coords)[0])
    f0 = info.names.index("f0")
    assert theta[f0] == pytest.approx(0.1 * spec.prior.stderr[f0], rel=1e-6)
    assert np.isfinite(float(log_density(jnp.asarray(y), data, spec)))


def test_box_truncated_draws_match_the_truncated_density_on_a_grid():
    """Gibbs draws of a correlated 2-d Gaussian whose mean lies outside the box (where redrawing
    rarely lands inside) have the mean and sd of the truncated density, integrated on a grid."""
    mean, precision = np.array([1.6, -0.3]), np.array([[40.0, 25.0], [25.0, 30.0]])  # correlation -0.72
    low, high = np.array([0.5, 0.0]), np.array([1.5, 1.0])
    draws = box_truncated_draws(
        np.tile(mean, (20000, 1)), np.tile(precision, (20000, 1, 1)), low, high, np.random.default_rng(5)
    )
    assert np.all((draws > low) & (draws < high))
    grid = [np.linspace(lo, hi, 801) for lo, hi in zip(low, high, strict=True)]
    x = np.stack(np.meshgrid(*grid, indexing="ij"), axis=-1) - mean
    density = np.exp(-0.5 * np.einsum("...i,ij,...j->...", x, precision, x))
    density /= density.sum()
    for k in (0, 1):
        values = np.meshgrid(*grid, indexing="ij")[k]
        expected_mean = float((density * values).sum())
        expected_sd = float(np.sqrt((density * (values - expected_mean) ** 2).sum()))
        assert abs(draws[:, k].mean() - expected_mean) < 5 * expected_sd / np.sqrt(len(draws) / 10)
        assert draws[:, k].std() == pytest.approx(expected_sd, rel=0.05)


@pytest.mark.parametrize(
    ("diverging_below", "targets", "kept_divergences"),
    [
        pytest.param(0.9, [0.95], 0, id="none"),
        pytest.param(0.995, [0.95, 0.99, 0.999], 0, id="cured-at-0.999"),
        pytest.param(1.0, [0.95, 0.99, 0.999], 3, id="never-cured"),
    ],
)
def test_divergent_runs_are_made_again_at_higher_target_acceptance(
    problem, monkeypatch, diverging_below, targets, kept_divergences
):
    """run_shard's reruns, with the sampler replaced by a stand-in that diverges (3 draws) at every
    target acceptance below ``diverging_below``: each rerun goes to the next higher target of
    RETRY_TARGET_ACCEPTS with 3 x the warm-up, from the same start and key; the last run is kept."""
    _, _, spec, info, _, data = problem
    calls = []

    def start_chains(key, z_start, data, spec, whitening, settings, target_accept, progress_bar):
        calls.append((target_accept, settings.warmup, np.asarray(key).tolist(), np.asarray(z_start).tolist()))
        return None, [target_accept]

    def extend_chains(mcmc, parts, data, spec, info, whitening, settings, seed, shard, stop_at_divergence):
        diverging = np.zeros((2, 10), bool)
        diverging[0, :3] = parts[0] < diverging_below
        extra = {"diverging": diverging, "num_steps": np.full((2, 10), 7), "energy": np.zeros((2, 10))}
        extra["adapt_state.step_size"] = np.full((2, 10), 1.0 - parts[0])
        return np.zeros((2, 10, 1)), extra, {}, np.zeros((2, 10, 1))

    monkeypatch.setattr(sampling, "_start_chains", start_chains)
    monkeypatch.setattr(sampling, "_extend_chains", extend_chains)
    settings = NutsSettings(100, 10, 2, 0.95, True, True, 10, False)
    run = sampling.run_shard(data, spec, info, settings, seed=4, shard=1, progress_bar=False)
    assert [c[0] for c in calls] == targets
    assert [c[1] for c in calls] == [100] + [300] * (len(targets) - 1)
    assert all(c[2:] == calls[0][2:] for c in calls)
    assert run.target_accept == targets[-1] and int(run.diverging.sum()) == kept_divergences
    np.testing.assert_allclose(run.step_size, 1.0 - targets[-1])
