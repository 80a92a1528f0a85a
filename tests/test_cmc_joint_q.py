"""The joint multi-q posterior (:mod:`heterodyne.cmc.joint_q`) against the Gaussian algebra of the
full parameter space.

Independent expectation. Each q bin b has a Gaussian posterior over (its shared parameters s_b,
its nuisance n_b) with precision Q_b and mean m_b, and a normal prior of s_b with precision
Pi_b and centre c_b; the joint prior of s has Pi_J, c_J. The product
pi_J(s) prod_b p_b(s_b, n_b) / pi_b(s_b) is one Gaussian over (s, n_1, ..., n_B): its precision
adds each Q_b into the rows and columns of (s_b, n_b), subtracts Pi_b on s_b and adds Pi_J on s,
and its linear term adds Q_b m_b, subtracts Pi_b c_b and adds Pi_J c_J. The module instead works
on the marginal draws of s and moves each nuisance along its regression: the two must agree.
"""

import numpy as np
import pytest

from heterodyne.cmc.joint_q import BinPosterior, joint_posterior

SHARED = ["D0", "v0"]
CHAINS, DRAWS = 4, 25_000


def random_gaussian(rng, names, scales):
    """(mean, covariance) with correlations and the given scales."""
    a = rng.normal(size=(len(names), len(names)))
    corr = a @ a.T + len(names) * np.eye(len(names))
    d = 1 / np.sqrt(np.diag(corr))
    cov = corr * np.outer(d, d) * np.outer(scales, scales)
    return rng.normal(size=len(names)) * scales, cov


#: shared parameters' centres (the per-bin means scatter around them by their random parts)
CENTRES = {"D0": 5000.0, "v0": 40.0}


@pytest.fixture(scope="module")
def case():
    """Three bins: the first two sample D0, v0 and a nuisance, the third holds v0 fixed; normal
    priors 2 sd wide (so dividing them out matters) centred half an sd off, except a uniform
    prior (precision 0) of v0 at q0.01."""
    rng = np.random.default_rng(7)
    layouts = [
        ("q0.005", ["D0", "v0", "f0"], [400.0, 3.0, 0.02]),
        ("q0.01", ["D0", "v0", "f0", "contrast_0"], [300.0, 2.0, 0.03, 0.01]),
        ("q0.02", ["D0", "contrast_0"], [500.0, 0.02]),
    ]
    bins, truths = [], []
    for folder, names, scales in layouts:
        mean, cov = random_gaussian(rng, names, np.array(scales))
        mean += np.array([CENTRES.get(n, 0.5) for n in names])
        x = rng.multivariate_normal(mean, cov, size=CHAINS * DRAWS)
        draws = {name: x[:, k].reshape(CHAINS, DRAWS) for k, name in enumerate(names)}
        sd = {n: float(np.sqrt(cov[k, k])) for k, n in enumerate(names) if n in SHARED}
        centre = {n: float(mean[names.index(n)]) + 0.5 * sd[n] for n in sd}
        precision = {n: 0.0 if (n, folder) == ("v0", "q0.01") else 1.0 / (2.0 * sd[n]) ** 2 for n in sd}
        bins.append(BinPosterior(folder, draws, centre, precision))
        truths.append((names, mean, cov))
    joint_centre, joint_precision = {"D0": 5100.0, "v0": 41.0}, {"D0": 1 / 2000.0**2, "v0": 1 / 20.0**2}
    return bins, truths, joint_centre, joint_precision


def full_space(bins, truths, joint_centre, joint_precision):
    """(names, mean, covariance) of the product Gaussian over (s, n_1, ..., n_B) (module docstring)."""
    own = [f"{n}@{b.folder}" for b, (ns, _, _) in zip(bins, truths, strict=True) for n in ns if n not in SHARED]
    names = list(SHARED) + own
    index = {n: k for k, n in enumerate(names)}
    precision, linear = np.zeros((len(names),) * 2), np.zeros(len(names))
    for k, n in enumerate(SHARED):
        precision[k, k] += joint_precision[n]
        linear[k] += joint_precision[n] * joint_centre[n]
    for b, (ns, mean, cov) in zip(bins, truths, strict=True):
        where = [index[n] if n in SHARED else index[f"{n}@{b.folder}"] for n in ns]
        q = np.linalg.inv(cov)
        precision[np.ix_(where, where)] += q
        linear[where] += q @ mean
        for n in b.precision:
            precision[index[n], index[n]] -= b.precision[n]
            linear[index[n]] -= b.precision[n] * b.centre[n]
    cov = np.linalg.inv(precision)
    return names, cov @ linear, cov


def test_joint_posterior_equals_the_product_gaussian(case):
    bins, truths, joint_centre, joint_precision = case
    names, mean, cov = full_space(*case)
    result = joint_posterior(bins, SHARED, joint_centre, joint_precision)
    assert sorted(result.draws) == sorted(names)
    sd = np.sqrt(np.diag(cov))
    # the Gaussian consensus of the shared block (estimated from the draws: ~1 % sampling error)
    np.testing.assert_allclose(result.mean, mean[:2], atol=0.02 * sd[:2].max(), rtol=0)
    np.testing.assert_allclose(np.sqrt(np.diag(result.covariance)), sd[:2], rtol=0.02)
    # the draws of everything, nuisance included: means, sds and correlations
    x = np.stack([result.draws[n] for n in names], axis=1)
    assert x.shape == (CHAINS * DRAWS, len(names))
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - mean) / sd, 0.03)
    np.testing.assert_allclose(x.std(axis=0), sd, rtol=0.03)
    np.testing.assert_allclose(np.corrcoef(x, rowvar=False), cov / np.outer(sd, sd), atol=0.03)
    # the joint is narrower than every bin alone
    for ns, _, c in truths:
        assert sd[0] < np.sqrt(c[ns.index("D0"), ns.index("D0")])
    assert result.agreement["dof"] == (2 + 2 + 1) - 2


def test_agreement_test_detects_bins_that_disagree(case):
    """Two one-parameter bins N(m1, s1^2), N(m2, s2^2): chi2 = (m1 - m2)^2 / (s1^2 + s2^2)."""
    rng = np.random.default_rng(3)
    results = {}
    for shift in (0.5, 6.0):
        bins = [
            BinPosterior(f"q{k}", {"D0": rng.normal(m, s, size=(CHAINS, DRAWS))}, {"D0": m}, {"D0": 0.0})
            for k, (m, s) in enumerate([(1000.0, 30.0), (1000.0 + shift * 50.0, 40.0)])
        ]
        results[shift] = joint_posterior(bins, ["D0"], {"D0": 1000.0}, {"D0": 0.0}).agreement
        assert results[shift]["chi2"] == pytest.approx(shift**2, rel=0.05, abs=0.02)
        assert results[shift]["dof"] == 1
    assert results[0.5]["agree"] and not results[6.0]["agree"] and results[6.0]["p"] < 1e-6


def test_no_bin_sampling_a_shared_parameter_is_an_error(case):
    bins, _, joint_centre, joint_precision = case
    with pytest.raises(ValueError, match="phi0"):
        joint_posterior(bins, [*SHARED, "phi0"], {**joint_centre, "phi0": 0.0}, {**joint_precision, "phi0": 0.0})
