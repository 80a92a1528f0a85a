"""Cross-q consistency statistics (:mod:`heterodyne.study.cross_q`): the weighted mean and chi2
against direct NumPy, the size and power of the tests on synthetic data sets, Holm's procedure
against a hand-worked example, and the extraction from nlsq.json records."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from heterodyne.core.parameters import PARAMETER_NAMES, default_values
from heterodyne.study import cross_q
from heterodyne.study.cross_q_record import rate_at

ALPHA = 0.05
N_SETS = 10_000
Q = np.array([0.005, 0.006, 0.007, 0.008])  # 1/A
Q_REF = 0.0065
NAMES = ("D0_sample", "alpha_sample", "v0")
THETA_TRUE = np.array([1.0e3, 0.3, 20.0])
SD = np.array([50.0, 0.02, 1.5])  # typical sd of each parameter, its unit


def test_weighted_mean_and_chi2_match_direct_numpy():
    theta = np.array([[1.0, 10.0], [1.4, 9.0], [0.7, 11.5]])
    cov = np.array([[[0.04, 0.01], [0.01, 0.25]], [[0.09, -0.02], [-0.02, 0.36]], [[0.01, 0.0], [0.0, 1.00]]])
    precision = [np.linalg.inv(c) for c in cov]
    cov_bar = np.linalg.inv(sum(precision))
    theta_bar = cov_bar @ sum(w @ t for w, t in zip(precision, theta, strict=True))
    chi2 = sum((t - theta_bar) @ w @ (t - theta_bar) for w, t in zip(precision, theta, strict=True))

    mean, mean_cov = cross_q.weighted_mean(theta, cov)
    np.testing.assert_allclose(mean, theta_bar, rtol=1e-12)
    np.testing.assert_allclose(mean_cov, cov_bar, rtol=1e-12)
    got, dof, p = cross_q.joint_test(theta, cov)
    assert got == pytest.approx(chi2, rel=1e-12)
    assert dof == 4
    assert p == pytest.approx(stats.chi2.sf(chi2, 4), rel=1e-12)

    # per parameter: inverse-variance mean of that parameter alone, n_q - 1 dof
    chi2_j, dof_j, p_j = cross_q.marginal_tests(theta, cov)
    for j in range(2):
        v = cov[:, j, j]
        m = np.sum(theta[:, j] / v) / np.sum(1.0 / v)
        expected = np.sum((theta[:, j] - m) ** 2 / v)
        assert chi2_j[j] == pytest.approx(expected, rel=1e-12)
        assert p_j[j] == pytest.approx(math.exp(-expected / 2), rel=1e-12)  # chi2 sf, 2 dof
    assert dof_j == 2


def _random_covariances(rng):
    """(N_SETS, n_q, p, p) random positive-definite covariances around the sd SD."""
    a = rng.normal(size=(N_SETS, len(Q), len(SD), len(SD)))
    shape = a @ np.swapaxes(a, -1, -2) / len(SD) + 0.2 * np.eye(len(SD))
    return shape * SD[:, None] * SD[None, :]


def _draw(rng, means, cov):
    """theta_q ~ N(means_q, Cov_q) for every set: (N_SETS, n_q, p)."""
    z = rng.normal(size=cov.shape[:-1])
    return means + np.einsum("...ij,...j->...i", np.linalg.cholesky(cov), z)


def _rates(theta, cov):
    _, _, p_joint = cross_q.joint_test(theta, cov)
    _, _, p_each = cross_q.marginal_tests(theta, cov)
    _, significant = cross_q.holm(p_each, ALPHA)
    return np.mean(p_joint <= ALPHA), np.mean(p_each <= ALPHA, axis=0), np.mean(significant.any(axis=-1))


def test_size_of_the_tests_under_q_independence():
    rng = np.random.default_rng(20240613)
    cov = _random_covariances(rng)
    theta = _draw(rng, np.broadcast_to(THETA_TRUE, (len(Q), len(SD))), cov)
    joint, each, family = _rates(theta, cov)
    print(f"size: joint {joint:.4f}, per parameter {np.round(each, 4)}, Holm family-wise {family:.4f}")
    assert abs(joint - ALPHA) <= 0.02
    assert np.all(np.abs(each - ALPHA) <= 0.02)
    assert family <= ALPHA + 0.02


def test_power_when_d0_scales_with_q():
    rng = np.random.default_rng(7)
    cov = _random_covariances(rng)
    means = np.tile(THETA_TRUE, (len(Q), 1))
    means[:, 0] = THETA_TRUE[0] * Q / Q_REF  # deviations up to ~4.6 sd of D0 from the mean
    theta = _draw(rng, means, cov)
    joint, each, family = _rates(theta, cov)
    _, _, p_each = cross_q.marginal_tests(theta, cov)
    _, significant = cross_q.holm(p_each, ALPHA)
    holm_d0 = np.mean(significant[:, 0])
    holm_others = np.mean(significant[:, 1:], axis=0)
    print(
        f"power: joint {joint:.4f}, per parameter {np.round(each, 4)}, Holm D0 {holm_d0:.4f}, "
        f"Holm others {np.round(holm_others, 4)}"
    )
    assert each[0] > 0.95
    assert holm_d0 > 0.95
    assert joint > 0.95
    assert np.all(np.abs(each[1:] - ALPHA) <= 0.02)
    assert np.all(holm_others <= ALPHA + 0.02)


def test_holm_against_hand_worked_example():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> running max 0.06)
    adjusted, significant = cross_q.holm([0.01, 0.04, 0.03, 0.005], 0.05)
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert significant.tolist() == [True, False, False, True]
    # step-down stops at the first acceptance even when a later raw p is below alpha / 1
    adjusted, significant = cross_q.holm([0.2, 0.001, 0.04], 0.05)
    np.testing.assert_allclose(adjusted, [0.2, 0.003, 0.08], rtol=1e-12)
    assert significant.tolist() == [False, True, False]
    adjusted, _ = cross_q.holm([0.6, 0.5], 0.05)  # capped at 1
    np.testing.assert_allclose(adjusted, [1.0, 1.0])


def _record(theta, cov, free, n_phi=2):
    """An nlsq.json-like dict: ``free`` names with values/covariance from theta/cov (dict name ->
    value, matrix over ``free``), the rest fixed; contrast/offset appended to the covariance."""
    values = dict(zip(PARAMETER_NAMES, default_values(), strict=True))
    values.update(theta)
    parameters = {
        name: {
            "value": float(values[name]),
            "stderr": None if name not in free else 1.0,
            "fixed": name not in free,
            "at_bound": False,
            "unit": "",
        }
        for name in PARAMETER_NAMES
    }
    names = list(free) + [f"contrast_{a}" for a in range(n_phi)] + [f"offset_{a}" for a in range(n_phi)]
    full = np.eye(len(names)) * 1e-4
    full[: len(free), : len(free)] = cov
    matrix = [[None if not np.isfinite(x) else float(x) for x in row] for row in full]
    # through JSON, as the workflow would read it
    return json.loads(
        json.dumps({"parameters": parameters, "covariance": {"names": names, "matrix": matrix, "independent": matrix}})
    )


def _records(rng, free_per_q):
    records, truth = [], []
    for free in free_per_q:
        theta = {name: float(rng.normal(5.0, 1.0)) for name in free}
        a = rng.normal(size=(len(free), len(free)))
        cov = a @ a.T + np.eye(len(free))
        records.append(_record(theta, cov, free))
        truth.append((theta, cov))
    return records, truth


def test_extraction_leaves_out_fractions_and_parameters_fixed_somewhere():
    rng = np.random.default_rng(3)
    full = ["D0_ref", "alpha_ref", "D0_sample", "v0", "f0", "f1", "phi0"]
    partial = ["D0_ref", "alpha_ref", "D0_sample", "f0", "f1", "phi0"]  # v0 fixed at q[1]
    q = [0.004, 0.006, 0.008]
    records, truth = _records(rng, [full, partial, full])

    names, theta, cov = cross_q.extract(records, q)
    expected = ["D0_ref", "alpha_ref", "D0_sample", "phi0"]
    assert names == expected
    for k, (values, matrix) in enumerate(truth):
        free = full if k != 1 else partial
        at = [free.index(n) for n in expected]
        np.testing.assert_array_equal(theta[k], [values[n] for n in expected])
        np.testing.assert_array_equal(cov[k], matrix[np.ix_(at, at)])
    assert theta.dtype == np.float64 and cov.shape == (3, 4, 4)

    out = {entry["name"]: entry["reason"] for entry in cross_q.left_out(records, q)}
    fixed_everywhere = {"D_offset_ref", "alpha_sample", "D_offset_sample", "beta", "v_offset"}
    assert set(out) == {"f0", "f1", "f2", "f3", "v0"} | fixed_everywhere
    assert out["v0"] == "fixed in the fit at q = 0.006 1/A"
    assert all(out[name] == "fixed in every fit" for name in fixed_everywhere)
    assert "fraction" in out["f0"]

    result = cross_q.cross_q_summary(records, q)
    assert list(result["parameters"]) == expected
    assert result["q"] == q
    assert result["joint"]["dof"] == 4 * 2
    assert {e["name"] for e in result["left_out"]} == set(out)
    mean, mean_cov = cross_q.weighted_mean(theta, cov)
    chi2, _, p = cross_q.joint_test(theta, cov)
    assert result["joint"]["chi2"] == pytest.approx(chi2) and result["joint"]["p"] == pytest.approx(p)
    for k, name in enumerate(expected):
        entry = result["parameters"][name]
        assert entry["mean"] == pytest.approx(mean[k])
        assert entry["se"] == pytest.approx(math.sqrt(mean_cov[k, k]))
        assert entry["dof"] == 2 and entry["p_holm"] >= entry["p"]
    json.dumps(result)  # serialisable as is


def test_extraction_refuses_non_finite_or_missing_covariance():
    rng = np.random.default_rng(5)
    free = ["D0_sample", "alpha_sample", "v0"]
    q = [0.004, 0.006]
    records, _ = _records(rng, [free, free])
    names = records[1]["covariance"]["names"]
    k = names.index("alpha_sample")
    records[1]["covariance"]["matrix"][k][k] = None  # NaN written as null
    with pytest.raises(ValueError, match=r"alpha_sample.*q = 0\.006"):
        cross_q.extract(records, q)

    records, _ = _records(rng, [free, free])
    del records[0]["covariance"]
    with pytest.raises(ValueError, match=r"q = 0\.004"):
        cross_q.extract(records, q)


def test_rate_at_propagates_the_covariance_of_amplitude_exponent_and_offset():
    """J(t) = max(D0 t^a + D_offset, 0) and v(t) = v0 t^b + v_offset at t_ref, with se^2 = g C g,
    g = (t^a, D0 t^a ln t, 1), written here in NumPy; a clipped J has no se."""
    names = ["D0_sample", "alpha_sample", "D_offset_sample", "v0", "beta", "v_offset"]
    values = dict(D0_sample=800.0, alpha_sample=-0.4, D_offset_sample=30.0, v0=12.0, beta=0.7, v_offset=-2.5)
    cov = np.array([[400.0, 1.5, -20.0], [1.5, 0.01, -0.2], [-20.0, -0.2, 9.0]])
    record = {
        "parameters": {n: {"value": v} for n, v in values.items()},
        "covariance": {"names": names, "matrix": np.kron(np.eye(2), cov).tolist()},
    }
    t = 3.7
    for rate, (amp, exp, off) in (("decay_sample", names[:3]), ("phase", names[3:])):
        power = t ** values[exp]
        g = np.array([power, values[amp] * power * np.log(t), 1.0])
        value, se = rate_at(record, rate, t)
        assert value == pytest.approx(values[amp] * power + values[off], rel=1e-14)
        assert se == pytest.approx(np.sqrt(g @ cov @ g), rel=1e-12)
    record["parameters"]["D_offset_sample"]["value"] = -1000.0
    assert rate_at(record, "decay_sample", t) == (0.0, None)
