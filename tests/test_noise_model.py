"""The noise model of a map (:mod:`heterodyne.noise_model`), its use by the NLSQ sandwich
(:mod:`heterodyne.fit.speckle_covariance`) and the CMC widening (:mod:`heterodyne.cmc.noise_adjustment`).

Independent expectations: maps with independent Gaussian noise must keep today's constant sigma;
frame-level maps of P pixels must get the speckle model with kappa = 1/P (Isserlis' theorem for
Gaussian intensity fluctuations; the intensity's non-Gaussian cumulants add ~20 %); the trace
formulas must equal the brute-force double sums over pairs written here in NumPy.
"""

import numpy as np
import pytest

from heterodyne.config import validate_config
from heterodyne.fit.speckle_covariance import speckle_score_covariance
from heterodyne.noise_model import (
    DIAGONAL_STEPS,
    MIXED_STEPS,
    difference_moment,
    estimate_angle_noise,
    estimate_noise,
    kernel,
)
from heterodyne.simulate.frames import speckle_maps
from heterodyne.simulate.spec import spec_from_section
from heterodyne.weighting.estimate import estimate_contrast_offset
from heterodyne.weighting.weights_file import AngleWeights, load_weights, save_weights

PIXELS, MODES, PHOTONS = 20000, 5, 2.0


def simulated_map(level, n=40, seed=3):
    """One map (N, N) of the demo truth at phi = 0: frame level (PIXELS pixels) or model plus
    independent noise 0.005 with a diagonal excess."""
    section = {"phi": [0.0], "n_frames": n, "begin_frame": 100, "seed": seed}
    section.update(
        {"level": "frames", "pixels": PIXELS, "modes": MODES, "photons_per_pixel": PHOTONS}
        if level == "frames"
        else {"contrast": [0.2], "offset": [1.0], "noise": [0.005]}
    )
    config = validate_config({"datasets": {"demo": {"file": "x.hdf", "simulate": True}}, "simulate": section})
    spec = spec_from_section(config["simulate"])
    if level == "frames":
        return speckle_maps(spec, 0.01)[0]
    from heterodyne.simulate.maps import noisy_model_maps

    return noisy_model_maps(spec, 0.01)[0]


def noise_of(c2):
    """(AngleNoise, offset estimate) of one map."""
    valid = np.ones(c2.shape, bool)
    offset = estimate_contrast_offset(c2, valid)[1]
    return estimate_noise(c2, valid, np.diagonal(c2).copy(), offset, estimate_angle_noise(c2, valid)), offset


def test_independent_noise_keeps_the_constant_sigma():
    c2 = simulated_map("maps")
    noise = noise_of(c2)[0]
    assert noise.model == "independent"
    assert noise.sigma == estimate_angle_noise(c2, np.ones(c2.shape, bool))
    assert noise.sigma == pytest.approx(0.005, rel=0.1)
    np.testing.assert_array_equal(noise.pair_sigma(np.array([0, 3]), np.array([1, 30])), [noise.sigma] * 2)


def test_speckle_map_gets_the_speckle_model_with_kappa_one_over_pixels():
    noise, offset = noise_of(simulated_map("frames"))
    assert noise.model == "speckle"
    assert 0.9 < noise.kappa * PIXELS < 1.5
    # the raw diagonal (the level plus the estimated offset): 1 + contrast 1/M + shot noise 1/photons
    assert np.median(noise.diagonal_level) + offset == pytest.approx(1 + 1 / MODES + 1 / PHOTONS, rel=0.02)
    # element sd grows with c2: larger next to the diagonal than at the longest lag
    near, far = noise.pair_sigma(np.array([10, 0]), np.array([11, 39]))
    d, lag = noise.diagonal_level, noise.lag_level
    assert near / far == pytest.approx(
        np.sqrt((d[10] * d[11] + lag[1] ** 2) / (d[0] * d[39] + lag[39] ** 2)), rel=1e-12
    )
    assert near > far


def element_covariance(diagonal_level, lag_level, pairs):
    """kappa = 1 covariance matrix of the elements ``pairs`` [(i, j), ...], entry by entry."""

    def k(a, b):
        return diagonal_level[a] if a == b else lag_level[abs(a - b)]

    return np.array([[k(i, p) * k(j, q) + k(i, q) * k(j, p) for p, q in pairs] for i, j in pairs])


@pytest.mark.parametrize("steps", [DIAGONAL_STEPS, MIXED_STEPS], ids=["diagonal", "mixed"])
def test_difference_moment_is_the_quadratic_form_of_the_element_covariance(steps):
    rng = np.random.default_rng(0)
    n = 12
    diagonal_level, lag_level = rng.uniform(0.5, 0.8, n), np.exp(-0.3 * np.arange(n)) * 0.2
    rows, cols = np.array([0, 2, 4]), np.array([3, 8, 7])
    got = difference_moment(steps, diagonal_level, lag_level, rows, cols)
    for m, (i, j) in enumerate(zip(rows, cols, strict=True)):
        pairs = [(i + di, j + dj) for (di, dj), _ in steps]
        a = np.array([c for _, c in steps])
        assert got[m] == pytest.approx(a @ element_covariance(diagonal_level, lag_level, pairs) @ a, rel=1e-12)


def test_score_covariance_trace_equals_the_double_sum_over_pairs():
    rng = np.random.default_rng(1)
    n, n_p, kappa = 7, 3, 2.5e-4
    diagonal_level, lag_level = rng.uniform(0.5, 0.8, n), np.exp(-0.4 * np.arange(n)) * 0.25
    full = kernel(diagonal_level, lag_level, np.arange(n)[:, None], np.arange(n)[None, :])
    rows, cols = np.triu_indices(n, 1)
    jacobian, weight = rng.normal(size=(len(rows), n_p)), rng.uniform(50, 200, len(rows))
    weight[4] = 0.0  # a masked pair adds nothing
    got = speckle_score_covariance(jacobian, weight, rows, cols, full, kappa)
    a = jacobian * weight[:, None]
    cov = kappa * element_covariance(diagonal_level, lag_level, list(zip(rows, cols, strict=True)))
    np.testing.assert_allclose(got, a.T @ cov @ a, rtol=1e-12)


def test_weights_file_keeps_the_noise_model(tmp_path):
    noise = noise_of(simulated_map("frames", n=20))[0]
    weights = AngleWeights(
        phi=np.array([0.0]),
        sigma=np.array([noise.sigma]),
        contrast=np.array([0.2]),
        offset=np.array([1.0]),
        method="robust",
        noise=(noise,),
    )
    save_weights(tmp_path / "w.json", weights, {"test": True})
    loaded = load_weights(tmp_path / "w.json").noise[0]
    assert loaded.model == "speckle" and loaded.kappa == noise.kappa
    for field in ("diagonal_level", "lag_level", "lag_spread", "lag_spread_model"):
        np.testing.assert_array_equal(getattr(loaded, field), getattr(noise, field))


def test_cmc_widening_maps_the_independent_covariance_onto_the_sandwich():
    from cmc_fixtures import PHI, Q, nlsq_record, simulated_dataset

    from heterodyne.cmc.coordinates import theta_from_y, y_from_theta
    from heterodyne.cmc.model import build_model_spec
    from heterodyne.cmc.noise_adjustment import adjustment_matrix, sd_factors

    dataset = simulated_dataset()
    nlsq = nlsq_record(dataset)
    prior = {"default": {"kind": "truncated-normal", "width": 4.0, "width_unit": "stderr"}, "parameters": {}}
    spec, info = build_model_spec(nlsq, prior, dataset.t, Q, len(PHI), 1)
    names = list(reversed(info.names))  # NLSQ order differs from the sampler's
    se = np.array([spec.prior.stderr[info.names.index(n)] for n in names])
    rng = np.random.default_rng(4)
    mix = np.linalg.qr(rng.normal(size=(len(names), len(names))))[0]
    independent = np.outer(se, se) * 0.2 + np.diag(se**2)
    sandwich = mix @ np.diag(rng.uniform(1, 9, len(names))) @ mix.T * se[:, None] * se[None, :]
    dimension = len(info.names) + 1  # plus the noise scale, left alone
    omega = adjustment_matrix((names, sandwich, independent), info.names, spec.coords, spec.prior.centre, dimension)
    # the same matrices in the sampler's coordinates, by finite differences of theta(y)
    y0 = y_from_theta(spec.prior.centre, spec.coords)
    step = 1e-6
    gradient = np.stack(
        [
            (
                np.asarray(theta_from_y(y0 + step * e, spec.coords)[0])
                - np.asarray(theta_from_y(y0 - step * e, spec.coords)[0])
            )
            / (2 * step)
            for e in np.eye(len(y0))
        ],
        axis=1,
    )
    order = [names.index(n) for n in info.names]
    inverse = np.linalg.inv(gradient)
    to_y = [inverse @ v[np.ix_(order, order)] @ inverse.T for v in (independent, sandwich)]
    np.testing.assert_allclose(
        omega[:-1, :-1] @ to_y[0] @ omega[:-1, :-1].T, to_y[1], rtol=1e-6, atol=1e-9 * np.abs(to_y[1]).max()
    )
    assert omega[-1, -1] == 1.0 and not omega[-1, :-1].any()
    factors = sd_factors((names, sandwich, independent), info.names)
    assert factors[names[0]] == pytest.approx(np.sqrt(sandwich[0, 0] / independent[0, 0]))


@pytest.mark.parametrize("shared", [False, True], ids=["per-angle", "shared"])
def test_score_covariance_of_independent_angles_is_the_normal_matrix(shared):
    import jax.numpy as jnp
    from nlsq_fixtures import TRUTH, nlsq_section, simulated_dataset

    from heterodyne.fit.joint_fit import expanded_parameters
    from heterodyne.fit.problem import build_problem, full_theta
    from heterodyne.fit.settings import settings_from_config
    from heterodyne.fit.speckle_covariance import score_covariance
    from heterodyne.fit.uncertainty import normal_equations
    from heterodyne.noise_model import independent_noise

    dataset, weights = simulated_dataset((0.0, 60.0), 12, 0.01, seed=2)
    problem = build_problem(dataset, weights)
    settings = settings_from_config(nlsq_section(TRUTH, scaling="shared" if shared else "per_angle"))
    template, free_index = jnp.asarray(settings.initial), jnp.asarray(settings.free, dtype=jnp.int32)
    x = settings.initial[np.asarray(settings.free)] * 1.01
    p = expanded_parameters(x, template, free_index, problem, 16, shared)
    m = np.asarray(normal_equations(p, template, free_index, problem, 16, shared)[0])
    n_s = 1 if shared else 2
    scaling = np.asarray(p)[len(x) :].reshape(2, n_s)[:, [0, 0] if shared else [0, 1]]
    theta = np.asarray(full_theta(jnp.asarray(x), template, free_index))
    noise = (independent_noise(0.01, 12),) * 2
    got = score_covariance(x, scaling[0], scaling[1], theta, template, free_index, problem, 16, shared, noise)
    np.testing.assert_allclose(got, m, rtol=1e-10, atol=1e-10 * np.abs(m).max())
