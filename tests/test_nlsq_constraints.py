"""Fixed parameters, bounds, bad starts, the linear contrast/offset solve, the memory-bounded
(chunked) mode, shared scaling and multi-start, on a small simulated problem (3 angles, N = 40)."""

import jax.numpy as jnp
import numpy as np
import pytest
from nlsq_fixtures import FREE, TRUTH, nlsq_section, noiseless_c2, perturbed, simulated_dataset
from scipy.optimize import lsq_linear

from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, SCALING_BOUNDS, as_vector
from heterodyne.core.symmetries import exchanged_start
from heterodyne.errors import InputError
from heterodyne.fit.joint_fit import FitFailed, fit_joint
from heterodyne.fit.multistart import latin_hypercube_starts
from heterodyne.fit.problem import build_problem, optimal_scaling, projected_residuals, scaling_sums
from heterodyne.fit.results import result_record
from heterodyne.fit.settings import settings_from_config
from heterodyne.fit.uncertainty import covariance
from heterodyne.report.findings import EXCHANGED_DELTA_CHI2, fit_warnings

PHI = (0.0, 45.0, 90.0)
N_TIMES = 40


@pytest.fixture(scope="module")
def problem():
    dataset, weights = simulated_dataset(PHI, N_TIMES, 0.01, seed=3)
    return build_problem(dataset, weights)


@pytest.fixture(scope="module")
def reference_fit(problem):
    return fit_joint(problem, settings_from_config(nlsq_section(perturbed(TRUTH, 0.3, FREE, seed=5))))


def test_fixed_parameter_stays_at_its_value(problem):
    section = nlsq_section()
    section["fixed"] = section["fixed"] + ["alpha_ref"]
    section["initial"]["alpha_ref"] = 0.25  # deliberately off the truth 0.2
    fit = fit_joint(problem, settings_from_config(section))
    assert fit.theta[INDEX["alpha_ref"]] == 0.25
    assert np.isnan(fit.theta_stderr[INDEX["alpha_ref"]])
    assert "alpha_ref" not in fit.free_names and "alpha_ref" not in fit.covariance_names
    for name in ("D_offset_ref", "f2", "f3"):
        assert fit.theta[INDEX[name]] == TRUTH[name]


def test_bound_override_is_honoured(problem):
    """Truth D0_sample = 3000 lies above the overridden upper bound 2500: the fit must stop
    exactly on the bound and say so."""
    section = nlsq_section(dict(TRUTH, D0_sample=2400.0), bounds={"D0_sample": [1000.0, 2500.0]})
    fit = fit_joint(problem, settings_from_config(section))
    k = INDEX["D0_sample"]
    assert fit.theta[k] <= 2500.0
    assert fit.theta[k] == pytest.approx(2500.0, rel=1e-6)
    assert fit.at_bound[k]
    assert fit.at_bound.sum() == 1


def test_initial_value_outside_bounds_is_an_input_error():
    section = nlsq_section(dict(TRUTH, f0=1.5))
    with pytest.raises(InputError, match=r"f0 = 1.5 not in \[0.0, 1.0\].*nlsq.initial"):
        settings_from_config(section, source="cfg.yaml")
    with pytest.raises(InputError, match="nlsq.bounds.v0"):
        settings_from_config(nlsq_section(bounds={"v0": [5.0, 5.0]}))


def test_weights_for_other_angles_are_an_input_error():
    dataset, weights = simulated_dataset(PHI, 8, 0.01, seed=1)
    other = weights.__class__(
        phi=weights.phi + 5.0,
        sigma=weights.sigma,
        contrast=weights.contrast,
        offset=weights.offset,
        method=weights.method,
    )
    with pytest.raises(InputError, match="weights.json: weights are for phi") as caught:
        build_problem(dataset, other, weights_path="weights.json")
    # plain numbers, not np.float64(...) reprs
    shifted, plain = [float(p) + 5.0 for p in PHI], [float(p) for p in PHI]
    assert f"phi = {shifted} deg but the dataset" in str(caught.value)
    assert f"has phi = {plain} deg" in str(caught.value)


def test_box_least_squares_matches_scipy():
    """Contrast/offset from the closed-form box solve equal scipy's bounded linear least
    squares, for data whose unconstrained optimum lies inside and outside the box."""
    rng = np.random.default_rng(0)
    brackets = rng.uniform(0.0, 1.0, (4, 50))
    weight = rng.uniform(0.5, 2.0, (4, 50))
    truth_c, truth_o = np.array([0.3, 1.4, -0.2, 0.5]), np.array([1.0, 0.9, 1.2, 1.7])
    data = truth_c[:, None] * brackets + truth_o[:, None] + rng.normal(0, 0.01, (4, 50))
    c, o = optimal_scaling(scaling_sums(brackets, data, weight), shared=False)
    bounds = list(zip(SCALING_BOUNDS["contrast"], SCALING_BOUNDS["offset"], strict=True))
    for a in range(4):
        design = np.stack([brackets[a], np.ones(50)], axis=1) * weight[a][:, None]
        ref = lsq_linear(design, data[a] * weight[a], bounds=bounds, tol=1e-14).x
        np.testing.assert_allclose([c[a], o[a]], ref, atol=1e-9)
    c_shared, o_shared = optimal_scaling(scaling_sums(brackets[:2], data[:2], weight[:2]), shared=True)
    design = np.concatenate([np.stack([brackets[a], np.ones(50)], axis=1) * weight[a][:, None] for a in range(2)])
    ref = lsq_linear(design, np.concatenate([data[a] * weight[a] for a in range(2)]), bounds=bounds, tol=1e-14).x
    np.testing.assert_allclose([c_shared[0], o_shared[0]], ref, atol=1e-9)
    np.testing.assert_allclose(c_shared, c_shared[0])


def test_chunked_mode_matches_in_memory(problem, reference_fit):
    """A budget far below the Jacobian size forces the chunked J^T J path: same optimum, chi2 and
    standard errors."""
    section = nlsq_section(perturbed(TRUTH, 0.3, FREE, seed=5), jacobian_memory_mb=0.05)
    fit = fit_joint(problem, settings_from_config(section))
    assert fit.solver.chunked and fit.solver.converged
    np.testing.assert_allclose(fit.chi2, reference_fit.chi2, rtol=1e-8)
    free = [INDEX[name] for name in fit.free_names]
    assert np.all(np.abs(fit.theta[free] - reference_fit.theta[free]) < 1e-3 * reference_fit.theta_stderr[free])
    np.testing.assert_allclose(fit.theta_stderr[free], reference_fit.theta_stderr[free], rtol=1e-4)
    np.testing.assert_allclose(fit.contrast_stderr, reference_fit.contrast_stderr, rtol=1e-4)


def test_standard_errors_match_numpy_jacobian(problem, reference_fit):
    """se from the chunked accumulation equal those of an explicit finite-difference Jacobian in
    all free parameters (physics + contrast + offset), scaled by chi2 / dof."""
    fit = reference_fit
    t, q, dt = np.asarray(problem.t), float(problem.q), float(problem.dt)
    rows, cols = np.asarray(problem.rows), np.asarray(problem.cols)
    data, weight = np.asarray(problem.data), np.asarray(problem.weight)
    from heterodyne.core.jax_backend import compute_c2_heterodyne

    free = [INDEX[name] for name in fit.free_names]

    def residuals(p):
        theta = fit.theta.copy()
        theta[free] = p[: len(free)]
        c, o = p[len(free) : len(free) + 3], p[len(free) + 3 :]
        model = [np.asarray(compute_c2_heterodyne(theta, t, q, dt, PHI[a], c[a], o[a]))[rows, cols] for a in range(3)]
        return (weight * (np.array(model) - data)).ravel()

    p0 = np.concatenate([fit.theta[free], fit.contrast, fit.offset])
    steps = 1e-6 * np.maximum(np.abs(p0), 1e-3)
    jac = np.stack(
        [
            (residuals(p0 + h * e) - residuals(p0 - h * e)) / (2 * h)
            for h, e in zip(steps, np.eye(len(p0)), strict=True)
        ],
        axis=1,
    )
    r = residuals(p0)
    cov = np.linalg.inv(jac.T @ jac) * (r @ r) / fit.dof
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(fit.theta_stderr[free], se[: len(free)], rtol=1e-4)
    np.testing.assert_allclose(fit.contrast_stderr, se[len(free) : len(free) + 3], rtol=1e-4)
    np.testing.assert_allclose(fit.offset_stderr, se[len(free) + 3 :], rtol=1e-4)
    np.testing.assert_allclose(r @ r, fit.chi2, rtol=1e-10)


def test_shared_scaling_recovers_common_contrast():
    clean = noiseless_c2(PHI, N_TIMES, contrasts=(0.31,) * 3, offsets=(1.005,) * 3)
    dataset, weights = simulated_dataset(PHI, N_TIMES, 0.01, seed=4, clean=clean)
    fit = fit_joint(build_problem(dataset, weights), settings_from_config(nlsq_section(scaling="shared")))
    assert fit.solver.converged
    assert np.all(fit.contrast == fit.contrast[0]) and np.all(fit.offset == fit.offset[0])
    assert abs(fit.contrast[0] - 0.31) < 3 * fit.contrast_stderr[0]
    assert abs(fit.offset[0] - 1.005) < 3 * fit.offset_stderr[0]
    assert fit.covariance_names[-2:] == ["contrast", "offset"]
    assert fit.dof == 3 * N_TIMES * (N_TIMES - 1) // 2 - len(FREE) - 2


def test_latin_hypercube_has_one_point_per_slice():
    lower, upper = np.array([0.0, -2.0, 10.0]), np.array([1.0, 2.0, 1e4])
    starts = latin_hypercube_starts(lower, upper, 8, seed=1)
    assert starts.shape == (8, 3)
    for d in range(3):
        slices = np.floor((starts[:, d] - lower[d]) / (upper[d] - lower[d]) * 8).astype(int)
        assert sorted(slices) == list(range(8))
    np.testing.assert_array_equal(starts, latin_hypercube_starts(lower, upper, 8, seed=1))


def test_multistart_rescues_a_poor_guess(problem, reference_fit):
    """From f0 = 0.99, f1 = 0.15 the sample fraction 0.99 e^{0.15 t} is clipped at 1 at every
    frame, so f0 and f1 have zero gradient and a single start stays stuck (chi2 ~ 20x the
    optimum); Latin-hypercube starts over finite bounds reach the reference optimum."""
    bounds = {name: [0.5 * TRUTH[name], 1.5 * TRUTH[name]] for name in ("D0_ref", "D0_sample")}
    bounds.update(
        {
            "v0": [0.0, 300.0],
            "f0": [0.0, 1.0],
            "alpha_ref": [0.0, 0.4],
            "alpha_sample": [-0.5, 0.0],
            "beta": [0.2, 0.6],
            "f1": [0.0, 0.2],
            "phi0": [0.0, 20.0],
        }
    )
    poor = dict(TRUTH, f0=0.99, f1=0.15)
    single = fit_joint(problem, settings_from_config(nlsq_section(poor, bounds=bounds)))
    multi = fit_joint(
        problem, settings_from_config(nlsq_section(poor, bounds=bounds, multistart={"n_starts": 4, "seed": 0}))
    )
    assert multi.solver.n_starts == 6  # the initial value, 4 Latin-hypercube starts, the exchanged components
    assert single.chi2 > 5 * reference_fit.chi2
    np.testing.assert_allclose(multi.chi2, reference_fit.chi2, rtol=1e-6)


def test_non_finite_data_fail_loudly(problem):
    bad = problem._replace(data=problem.data.at[0, 5].set(np.nan))
    with pytest.raises(FitFailed, match="finite"):
        fit_joint(bad, settings_from_config(nlsq_section()))


def test_evaluation_limit_reports_not_converged(problem):
    fit = fit_joint(problem, settings_from_config(nlsq_section(perturbed(TRUTH, 0.3, FREE, seed=5), max_nfev=2)))
    assert not fit.solver.converged
    assert "function evaluations" in fit.solver.termination
    assert np.isfinite(fit.chi2)


def test_velocity_sign_is_reported_positive(problem, reference_fit):
    """c2 is even in v: a start at v0 = -truth converges to the mirror solution, which the fit
    reports as v0 > 0 with the same chi2 and standard error as a fit from the positive side."""
    fit = fit_joint(problem, settings_from_config(nlsq_section(dict(TRUTH, v0=-TRUTH["v0"]))))
    k = INDEX["v0"]
    assert fit.theta[k] > 0
    assert fit.theta[k] == pytest.approx(reference_fit.theta[k], rel=1e-4)
    assert fit.theta_stderr[k] == pytest.approx(reference_fit.theta_stderr[k], rel=1e-3)
    assert fit.chi2 == pytest.approx(reference_fit.chi2, rel=1e-8)


def test_covariance_marks_parameters_the_data_do_not_determine():
    """J with a zero column (parameter 3) and two identical columns (4 and 5): those three are
    undetermined (NaN standard error); 0-2 keep the errors of the reduced full-rank model."""
    rng = np.random.default_rng(4)
    base = rng.normal(size=(200, 4)) * [1.0, 30.0, 0.01, 5.0]
    jac = np.column_stack([base[:, :3], np.zeros(200), base[:, 3], base[:, 3]])
    cov, se, corr, undetermined = covariance(jac.T @ jac, chi2=150.0, dof=150)
    assert undetermined.tolist() == [False, False, False, True, True, True]
    assert np.all(np.isnan(se[3:])) and np.all(np.isnan(corr[3:, :]))
    reduced = np.sqrt(np.diag(np.linalg.inv(base.T @ base)))[:3]
    np.testing.assert_allclose(se[:3], reduced, rtol=1e-9)
    _, se_full, _, none = covariance(base.T @ base, chi2=150.0, dof=150)
    assert not none.any() and np.all(np.isfinite(se_full))


def test_parameters_without_effect_on_the_data_make_the_fit_unconverged(problem, caplog):
    """Starting at D_offset_ref = -5000, J_ref(t) = max(D0_ref t^0.2 + D_offset_ref, 0) is 0 over
    the whole window: D0_ref and D_offset_ref change nothing, so the data cannot determine them.
    The fit must say converged = false, name both, and give them no standard error."""
    free = ("D0_ref", "D_offset_ref", "D0_sample")
    section = nlsq_section(dict(TRUTH, D_offset_ref=-5000.0), fixed=[n for n in TRUTH if n not in free])
    fit = fit_joint(problem, settings_from_config(section))
    assert fit.solver.converged is False and fit.solver.undetermined == ["D0_ref", "D_offset_ref"]
    assert "not determined by the data: D0_ref, D_offset_ref" in fit.solver.termination
    assert np.isnan(fit.theta_stderr[[INDEX["D0_ref"], INDEX["D_offset_ref"]]]).all()
    assert np.isfinite(fit.theta_stderr[INDEX["D0_sample"]]) and np.all(np.isfinite(fit.contrast_stderr))
    assert any("D0_ref, D_offset_ref" in m for m in caplog.messages)
    record = result_record(fit, PHI, provenance={})
    assert record["converged"] is False and record["undetermined"] == ["D0_ref", "D_offset_ref"]
    assert record["parameters"]["D0_ref"]["stderr"] is None
    warnings = fit_warnings(
        record,
        {
            "shards": [],
            "flagged_shards": [],
            "combined": {"flagged": False},
            "undetermined": [],
            "limits": {"undetermined_sd_ratio": 0.3},
        },
    )
    assert any("did not converge" in w and "D0_ref, D_offset_ref" in w for w in warnings)


def test_fit_leaves_the_basin_of_the_exchanged_components(problem, reference_fit):
    """With x_s growing in time, exchanging the components is only approximately a symmetry: a
    start in that basin (components exchanged, x_s -> 1 - x_s matched at two times) ends in a
    local minimum unless the fit also restarts from the exchanged solution, which it does."""
    start = exchanged_start(as_vector(TRUTH), 2.5, 7.5)
    fit = fit_joint(problem, settings_from_config(nlsq_section(dict(zip(PARAMETER_NAMES, start, strict=True)))))
    assert fit.chi2 == pytest.approx(reference_fit.chi2, rel=1e-6)
    np.testing.assert_allclose(fit.theta, reference_fit.theta, rtol=1e-3, atol=1e-6)


def test_the_other_optimum_of_the_exchanged_components_is_recorded_and_warned(problem, reference_fit):
    """x_s grows in time, so exchanging reference and sample is no exact symmetry: the restart from
    the exchanged components ends in a distinct local minimum. The fit records it with its chi2
    excess, which equals the projected chi2 at its parameters minus the best chi2 (evaluated here
    with the residual function alone), and with J_ref > J_sample there, unlike the best fit."""
    other = reference_fit.exchanged_optimum
    assert other is not None
    free = np.array([INDEX[name] for name in reference_fit.free_names])
    x_other = other["theta"][free]
    chi2_other = float(
        np.sum(
            np.asarray(
                projected_residuals(
                    jnp.asarray(x_other),
                    jnp.asarray(other["theta"]),
                    jnp.asarray(free, dtype=jnp.int32),
                    problem,
                    False,
                )
            )
            ** 2
        )
    )
    assert other["delta_chi2"] == pytest.approx(chi2_other - reference_fit.chi2, rel=1e-5, abs=1e-6)
    assert other["delta_chi2"] > 0
    assert (other["theta"][INDEX["D0_ref"]] > other["theta"][INDEX["D0_sample"]]) != (
        reference_fit.theta[INDEX["D0_ref"]] > reference_fit.theta[INDEX["D0_sample"]]
    )
    record = result_record(reference_fit, PHI, provenance={})
    assert record["exchanged_optimum"]["delta_chi2"] == other["delta_chi2"]
    assert record["exchanged_optimum"]["parameters"]["f0"] == other["theta"][INDEX["f0"]]
    cmc = {
        "shards": [],
        "flagged_shards": [],
        "combined": {"flagged": False},
        "undetermined": [],
        "limits": {"undetermined_sd_ratio": 0.3},
    }
    near = dict(record, exchanged_optimum=dict(record["exchanged_optimum"], delta_chi2=3.0))
    far = dict(record, exchanged_optimum=dict(record["exchanged_optimum"], delta_chi2=EXCHANGED_DELTA_CHI2 + 1))
    assert any("delta chi2 = 3 worse" in w for w in fit_warnings(near, cmc))
    assert not any("exchanged" in w for w in fit_warnings(far, cmc))
