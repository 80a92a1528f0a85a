"""Consensus and parametric combination, posterior summary and convergence diagnostics,
checked on Gaussian subposteriors whose product is known in closed form."""

import numpy as np
import pytest

from heterodyne.cmc.combine import combine_shards, posterior_summary, shard_summary
from heterodyne.cmc.diagnostics import ess_bulk, r_hat, shard_diagnostics

NAMES = ("a", "b", "c")
SCALES = np.array([1e3, 1.0, 1e-3])  # very different units, as D0 vs f0 vs contrast


def gaussian_shards(rng, n_shards=4, chains=2, draws=4000):
    """Shard draws from N(mu_k, S_k) and the exact product N(mu, S) of the K Gaussians."""
    shards, precisions, weighted = [], [], []
    for _ in range(n_shards):
        mu = rng.normal(0, 1, 3) * SCALES + SCALES * 5
        a = rng.normal(0, 1, (3, 3))
        cov = (a @ a.T + 3 * np.eye(3)) * np.outer(SCALES, SCALES)
        x = rng.multivariate_normal(mu, cov, size=(chains, draws))
        shards.append({name: x[:, :, m] for m, name in enumerate(NAMES)})
        precisions.append(np.linalg.inv(cov))
        weighted.append(precisions[-1] @ mu)
    cov = np.linalg.inv(sum(precisions))
    return shards, cov @ sum(weighted), cov


def test_consensus_reproduces_the_product_of_gaussian_subposteriors():
    shards, mean, cov = gaussian_shards(np.random.default_rng(0))
    draws, parametric = combine_shards(shards)
    sd = np.sqrt(np.diag(cov))
    x = np.stack([draws[name] for name in NAMES], axis=1)
    assert x.shape == (2 * 4000, 3)
    # 8000 draws: mean error ~ sd / 90, sd error ~ 1 %
    assert np.all(np.abs(x.mean(axis=0) - mean) < 0.05 * sd)
    assert np.allclose(x.std(axis=0), sd, rtol=0.05)
    for m, name in enumerate(NAMES):
        assert abs(parametric[name]["mean"] - mean[m]) < 0.05 * sd[m]
        assert parametric[name]["sd"] == pytest.approx(sd[m], rel=0.05)


def test_parametric_equals_precision_weighted_sample_moments():
    shards, _, _ = gaussian_shards(np.random.default_rng(1), n_shards=3, draws=500)
    _, parametric = combine_shards(shards)
    flat = [np.stack([s[name].ravel() for name in NAMES], axis=1) for s in shards]
    precisions = [np.linalg.inv(np.cov(x.T)) for x in flat]
    cov = np.linalg.inv(sum(precisions))
    mean = cov @ sum(p @ x.mean(axis=0) for p, x in zip(precisions, flat, strict=True))
    for m, name in enumerate(NAMES):
        assert parametric[name]["mean"] == pytest.approx(mean[m], rel=1e-9)
        assert parametric[name]["sd"] == pytest.approx(np.sqrt(cov[m, m]), rel=1e-9)


def test_single_shard_consensus_returns_its_own_draws():
    shards, _, _ = gaussian_shards(np.random.default_rng(2), n_shards=1, draws=300)
    draws, _ = combine_shards(shards)
    for name in NAMES:
        assert np.allclose(draws[name], shards[0][name].ravel(), rtol=1e-9, atol=1e-12 * SCALES.max())


def test_summary_quantiles_and_diagnostics_of_iid_draws():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 0.5, 8000)
    entry = posterior_summary({"p": x}, n_chains=4)["p"]
    assert entry["mean"] == pytest.approx(np.mean(x)) and entry["sd"] == pytest.approx(np.std(x, ddof=1))
    assert [entry["q05"], entry["q50"], entry["q95"]] == pytest.approx(np.percentile(x, [5, 50, 95]))
    assert abs(entry["r_hat"] - 1.0) < 0.01
    assert entry["ess_bulk"] == pytest.approx(8000, rel=0.15)


def test_ess_of_an_ar1_chain_matches_its_integrated_autocorrelation():
    rng = np.random.default_rng(4)
    rho, n = 0.8, 20000
    x = np.empty((2, n))
    x[:, 0] = rng.normal(size=2)
    for k in range(1, n):
        x[:, k] = rho * x[:, k - 1] + np.sqrt(1 - rho**2) * rng.normal(size=2)
    assert ess_bulk(x) == pytest.approx(2 * n * (1 - rho) / (1 + rho), rel=0.15)


def test_shifted_chains_and_divergences_are_flagged():
    rng = np.random.default_rng(5)
    good = rng.normal(0, 1, (2, 1000))
    stuck = good + np.array([[0.0], [1.0]])  # second chain one sd off
    assert r_hat(stuck) > 1.05
    clean = shard_diagnostics({"p": good}, np.zeros((2, 1000), bool))
    assert not clean["flagged"] and clean["divergences"] == 0
    diverging = np.zeros((2, 1000), bool)
    diverging[1, 7] = True
    assert shard_diagnostics({"p": good}, diverging) == {**clean, "divergences": 1, "flagged": True}
    entry = shard_summary(3, {"p": stuck}, np.zeros((2, 1000), bool), 1.5)
    assert entry["flagged"] and entry["shard"] == 3 and entry["max_r_hat"] == pytest.approx(r_hat(stuck))
    assert entry["parameters"]["p"]["mean"] == pytest.approx(stuck.mean())
