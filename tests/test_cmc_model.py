"""CMC model: the shared sampling coordinates, priors raised to 1/K, the pooled likelihood and the
shard geometry, checked against NumPy/SciPy re-derivations of the documented formulas."""

import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from cmc_fixtures import PHI, Q, SIGMA, c2_maps, nlsq_record, simulated_dataset
from heterodyne.cmc.coordinates import (IDENTITY, LOG, LOGIT, LOWER, UPPER, build_coordinates, choose_kind,
                                        theta_from_y, y_from_theta)
from heterodyne.cmc.model import LOG_NOISE_SCALE_PRIOR_SD, build_model_spec, log_density
from heterodyne.cmc.pooling import pooled_points, shard_labels
from heterodyne.cmc.sampling import shard_data, shard_geometry, start_position
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES
from heterodyne.errors import InputError

K = 3
PRIOR = {"default": {"kind": "truncated-normal", "width": 4.0, "width_unit": "stderr"},
         "parameters": {"v0": {"kind": "uniform", "width": 2.0, "width_unit": "absolute"}}}


@pytest.fixture(scope="module")
def problem():
    dataset = simulated_dataset()
    nlsq = nlsq_record(dataset)
    spec, info = build_model_spec(nlsq, PRIOR, dataset.t, Q, len(PHI), K)
    points = pooled_points(dataset.c2, dataset.valid)
    mine = points.take(shard_labels(points, K, 0) == 1)
    data = shard_data(dataset, SIGMA, mine, len(mine) + 5, K)  # 5 masked padding points
    return dataset, nlsq, spec, info, mine, data


def test_choose_kind_follows_the_distance_to_the_bounds():
    assert choose_kind("D0_ref", 100.0, 10.0, 0.0, 1e7) == LOG
    assert choose_kind("D0_ref", 20.0, 10.0, 0.0, 1e7) == LOWER       # 2 widths above 0: no log
    assert choose_kind("v0", 100.0, 10.0, -1e5, 1e5) == IDENTITY       # velocities are never logged
    assert choose_kind("f0", 0.95, 0.02, 0.0, 1.0) == UPPER
    assert choose_kind("f0", 0.5, 0.1, 0.0, 1.0) == LOGIT


MIXTURE_NAMES = ["D0_ref", "alpha_ref", "D0_sample", "alpha_sample", "v0", "f0", "contrast_0"]


def mixture_coordinates():
    centre = np.array([3000.0, 0.1, 9000.0, 0.1, 5.0, 0.4, 0.2])
    stderr = np.array([300.0, 0.01, 900.0, 0.01, 3.0, 0.05, 0.01])
    lower = np.array([0.0, -2.0, 0.0, -2.0, -1e5, 0.0, 0.0])
    upper = np.array([1e7, 2.0, 1e7, 2.0, 1e5, 1.0, 1.0])
    return build_coordinates(MIXTURE_NAMES, ["D0_ref", "alpha_ref", "D0_sample", "alpha_sample", "v0", "f0",
                                             "contrast"], centre, stderr, lower, upper,
                             {"f3": 0.05, "D_offset_ref": 10.0}, np.linspace(1.0, 20.0, 60), 0.005, 4, "f0")


def test_coordinates_round_trip_and_jacobian():
    """theta(y(theta)) = theta; log |d theta / d y| equals the log determinant of a central
    finite-difference Jacobian; the mixture block puts the slower component first."""
    coords = mixture_coordinates()
    assert list(coords.mixture) == [0, 2, 5]
    theta = np.array([2500.0, 0.12, 11000.0, 0.08, -3.0, 0.45, 0.21])
    y = y_from_theta(theta, coords)
    back, log_jac = theta_from_y(jnp.asarray(y), coords)
    np.testing.assert_allclose(np.asarray(back), theta, rtol=1e-10)
    step = 1e-6 * np.maximum(1.0, np.abs(y))
    columns = [(np.asarray(theta_from_y(jnp.asarray(y + step[k] * e), coords)[0])
                - np.asarray(theta_from_y(jnp.asarray(y - step[k] * e), coords)[0])) / (2 * step[k])
               for k, e in enumerate(np.eye(len(y)))]
    assert float(log_jac) == pytest.approx(np.linalg.slogdet(np.stack(columns, axis=1))[1], abs=1e-5)
    # any y maps inside the support: J_ref(t_m) < J_sample(t_m), 0 < x_s < 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        th = np.asarray(theta_from_y(jnp.asarray(y + rng.normal(0, 2, len(y))), coords)[0])
        t_m = float(coords.t_mean)
        j_ref = th[0] * t_m ** th[1] + 10.0
        assert 0 < j_ref < th[2] * t_m ** th[3] and 0 < th[5] + 0.05 < 1 and th[6] > 0


def _numpy_log_density(y, dataset, nlsq, spec, info, points, log_noise_scale=None):
    """The module docstring's log density, with log |d theta / d y| from finite differences."""
    theta = np.asarray(theta_from_y(jnp.asarray(y), spec.coords)[0])
    step = 1e-6 * np.maximum(1.0, np.abs(y))
    columns = [(np.asarray(theta_from_y(jnp.asarray(y + step[k] * e), spec.coords)[0])
                - np.asarray(theta_from_y(jnp.asarray(y - step[k] * e), spec.coords)[0])) / (2 * step[k])
               for k, e in enumerate(np.eye(len(y)))]
    log_jac = np.linalg.slogdet(np.stack(columns, axis=1))[1]
    params = np.array([nlsq["parameters"][name]["value"] for name in PARAMETER_NAMES])
    for m, name in enumerate(info.free_names):
        params[INDEX[name]] = theta[m]
    n_free, n_phi = len(info.free_names), len(PHI)
    maps = c2_maps(params, theta[n_free:n_free + n_phi], theta[n_free + n_phi:], dataset.t)
    model = maps[points.phi_index, points.idx1, points.idx2]
    observed = dataset.c2[points.phi_index, points.idx1, points.idx2]
    sigma = SIGMA[points.phi_index]
    prior = spec.prior
    inside = np.all((theta >= prior.low) & (theta <= prior.high))
    log_prior = np.sum(np.where(prior.normal, -0.5 * ((theta - prior.centre) / prior.sd) ** 2, 0.0))
    total = log_jac + (log_prior if inside else -np.inf) / K
    if log_noise_scale is not None:
        sigma = sigma * np.exp(log_noise_scale)
        total += (scipy.stats.norm.logpdf(log_noise_scale, scale=LOG_NOISE_SCALE_PRIOR_SD)
                  + np.log(np.sqrt(2 * np.pi) * LOG_NOISE_SCALE_PRIOR_SD)) / K  # up to its constant
    return total + scipy.stats.norm.logpdf(observed, model, sigma).sum() + 0.5 * np.log(2 * np.pi) * len(points)


def test_log_density_matches_numpy_rederivation(problem):
    dataset, nlsq, spec, info, points, data = problem
    y0 = y_from_theta(spec.prior.centre, spec.coords)
    rng = np.random.default_rng(5)
    for _ in range(3):
        y = y0 + rng.normal(0, 0.5, len(y0)) * np.sqrt(K) * spec.prior.stderr * np.where(
            spec.coords.kind == LOG, 1 / spec.prior.centre, 1.0)
        expected = _numpy_log_density(y, dataset, nlsq, spec, info, points)
        assert float(log_density(jnp.asarray(y), data, spec)) == pytest.approx(expected, rel=1e-8)
    with_noise = np.append(y0, 0.2)
    expected = _numpy_log_density(y0, dataset, nlsq, spec, info, points, log_noise_scale=0.2)
    assert float(log_density(jnp.asarray(with_noise), data, spec)) == pytest.approx(expected, rel=1e-8)


def test_uniform_prior_narrows_the_support(problem):
    _, nlsq, spec, info, _, _ = problem
    m = info.names.index("v0")
    centre = nlsq["parameters"]["v0"]["value"]
    assert (spec.prior.low[m], spec.prior.high[m]) == pytest.approx((centre - 2.0, centre + 2.0))
    assert not spec.prior.normal[m]


def test_geometry_whitens_the_shard_posterior(problem):
    """At the shard's mode the gradient vanishes and, in z = L^-1 (y - y_hat), the exact Hessian
    of -log p is close to the identity (the Gauss-Newton metric is right), and the log noise
    scale gets variance 1 / (2 n_points) (Fisher information of log sigma)."""
    _, _, spec, _, points, data = problem
    whitening = shard_geometry(data, spec, sample_noise_scale=True)
    y_hat = jnp.asarray(whitening.y_hat)
    grad = jax.grad(log_density)(y_hat, data, spec)
    hessian = -jax.jacrev(jax.grad(log_density))(y_hat, data, spec)
    assert np.max(np.abs(np.asarray(grad) @ whitening.chol)) < 1e-3
    whitened = whitening.chol.T @ np.asarray(hessian) @ whitening.chol
    np.testing.assert_allclose(whitened, np.eye(len(y_hat)), atol=0.15)
    variance = whitening.chol @ whitening.chol.T
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
    theta = np.asarray(theta_from_y(jnp.asarray(y), spec.coords)[0])
    f0 = info.names.index("f0")
    assert theta[f0] == pytest.approx(0.1 * spec.prior.stderr[f0], rel=1e-6)
    assert np.isfinite(float(log_density(jnp.asarray(y), data, spec)))
