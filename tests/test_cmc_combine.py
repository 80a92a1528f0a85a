"""Consensus and parametric combination checked on Gaussian subposteriors whose product is known
in closed form; posterior summary; the shard file's sampler statistics and its summary entry."""

import numpy as np
import pytest

from heterodyne.cmc.combine import combine_shards, posterior_summary, shard_summary
from heterodyne.cmc.convergence import ess_tail, r_hat
from heterodyne.cmc.coordinates import IDENTITY, build_coordinates
from heterodyne.cmc.diagnostics import e_bfmi
from heterodyne.cmc.draws_file import ShardDraws, load_shard, save_shard
from heterodyne.cmc.model import Prior

NAMES = ("a", "b", "c")
SCALES = np.array([1e3, 1.0, 1e-3])  # very different units, as D0 vs f0 vs contrast


#: sampling coordinates equal to the quantities themselves (bounds far away)
IDENTITY_COORDINATES = build_coordinates(
    list(NAMES), list(NAMES), 5 * SCALES, SCALES, -1e9 * SCALES, 1e9 * SCALES, {}, np.linspace(1.0, 2.0, 5), 0.01, 1
)


def combine(shards):
    """combine_shards of draws {name: (chains, draws)} in identity coordinates."""
    return combine_shards(
        [np.stack([s[name] for name in NAMES], axis=-1) for s in shards], list(NAMES), IDENTITY_COORDINATES
    )


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
    assert np.all(IDENTITY_COORDINATES.kind == IDENTITY)
    shards, mean, cov = gaussian_shards(np.random.default_rng(0))
    draws, parametric = combine(shards)
    sd = np.sqrt(np.diag(cov))
    x = np.stack([draws[name] for name in NAMES], axis=1)
    assert x.shape == (2 * 4000, 3)
    # 8000 draws: mean error ~ sd / 90, sd error ~ 1 %
    assert np.all(np.abs(x.mean(axis=0) - mean) < 0.05 * sd)
    assert np.allclose(x.std(axis=0), sd, rtol=0.05)
    for m, name in enumerate(NAMES):
        assert abs(parametric[name]["mean"] - mean[m]) < 0.05 * sd[m]
        assert parametric[name]["sd"] == pytest.approx(sd[m], rel=0.05)


def test_shards_with_extended_chains_are_thinned_to_the_shortest():
    """A shard whose chains were extended (12000 draws per chain beside 4000) is thinned evenly;
    the consensus still reproduces the product of the Gaussian subposteriors."""
    rng = np.random.default_rng(3)
    shards, precisions, weighted = [], [], []
    for draws in (12000, 4000):
        mu = rng.normal(0, 1, 3) * SCALES + SCALES * 5
        a = rng.normal(0, 1, (3, 3))
        cov = (a @ a.T + 3 * np.eye(3)) * np.outer(SCALES, SCALES)
        x = rng.multivariate_normal(mu, cov, size=(2, draws))
        shards.append({name: x[:, :, m] for m, name in enumerate(NAMES)})
        precisions.append(np.linalg.inv(cov))
        weighted.append(precisions[-1] @ mu)
    cov = np.linalg.inv(sum(precisions))
    mean, sd = cov @ sum(weighted), np.sqrt(np.diag(cov))
    draws, _ = combine(shards)
    x = np.stack([draws[name] for name in NAMES], axis=1)
    assert x.shape == (2 * 4000, 3)
    assert np.all(np.abs(x.mean(axis=0) - mean) < 0.05 * sd)
    assert np.allclose(x.std(axis=0), sd, rtol=0.05)


def test_parametric_equals_precision_weighted_sample_moments():
    shards, _, _ = gaussian_shards(np.random.default_rng(1), n_shards=3, draws=500)
    _, parametric = combine(shards)
    flat = [np.stack([s[name].ravel() for name in NAMES], axis=1) for s in shards]
    precisions = [np.linalg.inv(np.cov(x.T)) for x in flat]
    cov = np.linalg.inv(sum(precisions))
    mean = cov @ sum(p @ x.mean(axis=0) for p, x in zip(precisions, flat, strict=True))
    for m, name in enumerate(NAMES):
        assert parametric[name]["mean"] == pytest.approx(mean[m], rel=1e-9)
        assert parametric[name]["sd"] == pytest.approx(np.sqrt(cov[m, m]), rel=1e-9)


def test_single_shard_consensus_returns_its_own_draws():
    shards, _, _ = gaussian_shards(np.random.default_rng(2), n_shards=1, draws=300)
    draws, _ = combine(shards)
    for name in NAMES:
        assert np.allclose(draws[name], shards[0][name].ravel(), rtol=1e-9, atol=1e-12 * SCALES.max())


def test_summary_quantiles_and_diagnostics_of_iid_draws():
    rng = np.random.default_rng(3)
    x = rng.normal(2.0, 0.5, 8000)
    entry = posterior_summary({"p": x}, n_chains=4)["p"]
    assert entry["mean"] == pytest.approx(np.mean(x)) and entry["sd"] == pytest.approx(np.std(x, ddof=1))
    assert [entry["q05"], entry["q50"], entry["q95"]] == pytest.approx(np.percentile(x, [5, 50, 95]))
    assert abs(entry["r_hat"] - 1.0) < 0.01
    # independent draws: bulk ESS ~ 8000; the tail indicators are independent too
    assert entry["ess_bulk"] == pytest.approx(8000, rel=0.15) and entry["ess_tail"] == pytest.approx(8000, rel=0.15)
    assert entry["ess_tail"] == pytest.approx(ess_tail(x.reshape(4, 2000)), rel=1e-12)


def test_shard_file_keeps_sampler_statistics_and_its_summary_entry_uses_them(tmp_path):
    rng = np.random.default_rng(5)
    good = rng.normal(0, 1, (2, 1000))
    stuck = good + np.array([[0.0], [1.0]])  # second chain one sd off
    diverging = np.zeros((2, 1000), bool)
    diverging[1, 7] = True
    num_steps = rng.integers(1, 255, (2, 1000))  # 1..254 steps: below the limit
    num_steps[0, :3] = 255  # 2^8 - 1: three draws at the tree depth limit 8
    energy = rng.normal(10.0, 2.0, (2, 1000))
    draws = ShardDraws(
        draws={"p": good, "q": stuck},
        unconstrained=np.stack([good, stuck], axis=-1),
        diverging=diverging,
        num_steps=num_steps,
        energy=energy,
        step_size=np.array([0.25, 0.5]),
        max_tree_depth=8,
        target_accept=0.99,
        wall_time_s=1.5,
        chain_method="sequential",
    )
    prior = Prior(
        centre=np.array([1.0, 2.0]),
        stderr=np.array([0.1, 0.2]),
        low=np.array([0.0, -np.inf]),
        high=np.array([5.0, np.inf]),
        normal=np.array([True, False]),
        sd=np.array([1.0, 0.6]),
    )
    save_shard(tmp_path / "shard_3.h5", 3, 4, 11, 500, draws, IDENTITY_COORDINATES, prior, {"step": "test"})
    shard = load_shard(tmp_path / "shard_3.h5")
    assert (shard.shard, shard.num_shards, shard.seed, shard.n_points, shard.run.max_tree_depth) == (3, 4, 11, 500, 8)
    assert (shard.run.target_accept, shard.run.wall_time_s, shard.run.chain_method) == (0.99, 1.5, "sequential")
    for name in ("diverging", "num_steps", "energy", "step_size", "unconstrained"):
        assert np.array_equal(getattr(shard.run, name), getattr(draws, name)), name
    for saved, given in zip(shard.coordinates, IDENTITY_COORDINATES, strict=True):
        assert np.array_equal(saved, given)
    assert shard.prior.keys() == prior._asdict().keys()
    for field, given in prior._asdict().items():
        assert np.array_equal(shard.prior[field], given), field
    assert shard.path == str(tmp_path / "shard_3.h5")
    assert shard.run.num_steps.dtype.kind == "i" and shard.run.energy.dtype == np.float64

    entry = shard_summary(shard)
    assert entry["shard"] == 3 and entry["wall_time_s"] == 1.5 and entry["divergences"] == 1
    assert entry["target_accept"] == 0.99 and entry["draws_per_chain"] == 1000
    assert entry["frac_at_tree_depth_limit"] == 3 / 2000 and entry["tree_depth_max"] == 8
    assert entry["step_size"] == [0.25, 0.5] and entry["min_e_bfmi"] == pytest.approx(e_bfmi(energy).min())
    assert entry["max_r_hat"] == pytest.approx(r_hat(stuck)) and entry["max_r_hat"] > 1.05
    assert entry["flag_reasons"][:2] == ["1 divergences", "3 draws at tree depth limit 8"] and entry["flagged"]
    assert entry["parameters"]["q"]["mean"] == pytest.approx(stuck.mean())
    assert entry["parameters"]["q"]["sd"] == pytest.approx(np.std(stuck, ddof=1))
    assert entry["parameters"]["q"]["r_hat"] == entry["max_r_hat"]
