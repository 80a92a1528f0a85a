"""Recovery of a known truth by the joint NLSQ fit from a +/- 30 % perturbed start.

Data: in-memory simulations (tests/nlsq_fixtures.py, where the truth and why it is well
identified are documented) with Gaussian noise sigma = 0.01 on every pair. Every free physics
parameter and every contrast/offset must come back within 3 standard errors of the truth, and
chi2 / dof must be consistent with 1 (sd sqrt(2 / dof)).
"""

import numpy as np
import pytest
from nlsq_fixtures import CONTRASTS, FREE, OFFSETS, TRUTH, nlsq_section, perturbed, simulated_dataset

from heterodyne.core.parameters import INDEX, PARAMETER_NAMES
from heterodyne.fit.joint_fit import fit_joint
from heterodyne.fit.problem import build_problem
from heterodyne.fit.settings import settings_from_config

N_TIMES = 100
SIGMA = 0.01


def _fit(phi, fixed_extra=(), seed=7):
    dataset, weights = simulated_dataset(phi, N_TIMES, SIGMA, seed=seed)
    free = [name for name in FREE if name not in fixed_extra]
    section = nlsq_section(perturbed(TRUTH, 0.3, free, seed=seed))
    section["fixed"] = section["fixed"] + list(fixed_extra)
    return fit_joint(build_problem(dataset, weights), settings_from_config(section)), free


def _assert_recovered(fit, free, n_phi):
    assert fit.solver.converged, fit.solver.termination
    assert fit.free_names == free
    for name in free:
        k = INDEX[name]
        se = fit.theta_stderr[k]
        assert np.isfinite(se) and se > 0, name
        assert abs(fit.theta[k] - TRUTH[name]) < 3 * se, f"{name}: {fit.theta[k]} +/- {se}, truth {TRUTH[name]}"
    for name in PARAMETER_NAMES:
        if name not in free:
            assert fit.theta[INDEX[name]] == TRUTH[name]
            assert np.isnan(fit.theta_stderr[INDEX[name]])
    np.testing.assert_array_less(np.abs(fit.contrast - CONTRASTS[:n_phi]), 3 * fit.contrast_stderr)
    np.testing.assert_array_less(np.abs(fit.offset - OFFSETS[:n_phi]), 3 * fit.offset_stderr)
    assert abs(fit.reduced_chi2 - 1.0) < 5 * np.sqrt(2.0 / fit.dof)
    assert fit.dof == n_phi * N_TIMES * (N_TIMES - 1) // 2 - len(free) - 2 * n_phi
    np.testing.assert_allclose(fit.chi2_per_angle.sum(), fit.chi2, rtol=1e-12)


@pytest.fixture(scope="module")
def three_angles():
    return _fit((0.0, 45.0, 90.0))


def test_three_angles_recover_truth(three_angles):
    fit, free = three_angles
    _assert_recovered(fit, free, 3)
    assert not fit.at_bound.any()
    assert not fit.solver.chunked


def test_three_angles_correlation_matrix(three_angles):
    fit, free = three_angles
    corr = fit.correlation
    n_p = len(free) + 6
    assert corr.shape == (n_p, n_p)
    np.testing.assert_allclose(np.diag(corr), 1.0, rtol=1e-12)
    np.testing.assert_allclose(corr, corr.T, atol=1e-12)
    # sample transport amplitude and exponent compensate each other: strong negative correlation
    a, b = free.index("D0_sample"), free.index("alpha_sample")
    assert corr[a, b] < -0.5


def test_two_angles_recover_truth():
    """30 and 90 deg: |v0 cos(30 + phi0)| and |v0 sin(phi0)| are both seen (the model is even in
    the phase), which fixes v0 and phi0 near the truth, so phi0 stays free. (0 and 90 deg would
    not: phi0 and -phi0 give the same c2 there.)"""
    fit, free = _fit((30.0, 90.0), seed=11)
    _assert_recovered(fit, free, 2)


def test_one_angle_recovers_truth():
    """A single angle only sees v0 cos(phi + phi0): phi0 is fixed at its truth."""
    fit, free = _fit((30.0,), fixed_extra=("phi0",), seed=13)
    _assert_recovered(fit, free, 1)
