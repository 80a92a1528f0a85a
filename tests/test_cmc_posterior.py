"""Consensus Monte Carlo on a simulated problem with known truth: K = 4 shards against one
full-data NUTS run (K = 1) on the same data."""

import numpy as np
import pytest
from cmc_fixtures import PHI, WEIGHTS, Q, nlsq_record, simulated_dataset, truth_of

from heterodyne.cmc.combine import combine_shards, posterior_summary
from heterodyne.cmc.model import build_model_spec
from heterodyne.cmc.sampling import NutsSettings
from heterodyne.cmc.shards import sample_all_shards

K = 4
CHAINS = 2
SETTINGS = NutsSettings(
    warmup=150,
    samples=500,
    chains=CHAINS,
    target_accept=0.85,
    dense_mass=True,
    adapt_mass_matrix=False,
    max_tree_depth=10,
    sample_noise_scale=False,
)
PRIOR = {"default": {"kind": "truncated-normal", "width": 10.0, "width_unit": "stderr"}, "parameters": {}}


def consensus_run(dataset, nlsq, num_shards):
    spec, info = build_model_spec(nlsq, PRIOR, dataset.t, Q, len(PHI), num_shards)
    shards = sample_all_shards(dataset, WEIGHTS, spec, info, SETTINGS, num_shards)
    draws, _ = combine_shards([s.unconstrained for s in shards], info.names, spec.coords)
    return shards, posterior_summary(draws, CHAINS), info.names


@pytest.fixture(scope="module")
def runs():
    dataset = simulated_dataset()
    nlsq = nlsq_record(dataset)
    return {"nlsq": nlsq, 1: consensus_run(dataset, nlsq, 1), K: consensus_run(dataset, nlsq, K)}


def test_no_divergences_and_converged(runs):
    for num_shards in (1, K):
        shards, summary, _ = runs[num_shards]
        assert sum(int(s.diverging.sum()) for s in shards) == 0
        assert max(entry["r_hat"] for entry in summary.values()) < 1.02


def test_consensus_mean_within_3_sd_of_truth(runs):
    _, summary, names = runs[K]
    for name in names:
        assert abs(summary[name]["mean"] - truth_of(name)) < 3 * summary[name]["sd"], name


def test_consensus_agrees_with_full_data_nuts(runs):
    _, full, names = runs[1]
    _, combined, _ = runs[K]
    for name in names:
        assert abs(combined[name]["mean"] - full[name]["mean"]) < 0.3 * full[name]["sd"], name
        assert combined[name]["sd"] == pytest.approx(full[name]["sd"], rel=0.15), name


def test_combined_sd_shrinks_as_one_over_sqrt_k(runs):
    shards, combined, names = runs[K]
    for name in names:
        shard_sd = np.mean([s.draws[name].std() for s in shards])
        assert shard_sd / combined[name]["sd"] == pytest.approx(np.sqrt(K), rel=0.15), name


def test_contrast_and_offset_are_sampled_not_placeholders(runs):
    nlsq = runs["nlsq"]
    shards, combined, _ = runs[K]
    for kind in ("contrast", "offset"):
        for a in range(len(PHI)):
            name = f"{kind}_{a}"
            assert np.ptp(shards[0].draws[name]) > 0
            # posterior sd of a well-determined linear parameter ~ its least-squares stderr
            assert combined[name]["sd"] == pytest.approx(nlsq[f"{kind}_stderr"][a], rel=0.2), name
            assert abs(combined[name]["mean"] - truth_of(name)) < 3 * combined[name]["sd"], name
