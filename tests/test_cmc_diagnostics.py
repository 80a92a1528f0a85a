"""R-hat, bulk and tail ESS, E-BFMI and tree depth against independent numbers (ArviZ, closed forms),
and the shard pass criteria: each failing criterion adds its own reason."""

import numpy as np
import pytest

from heterodyne.cmc.convergence import ess_bulk, ess_tail, r_hat
from heterodyne.cmc.diagnostics import (
    E_BFMI_MIN,
    ESS_MIN,
    R_HAT_LIMIT,
    convergence_flags,
    e_bfmi,
    shard_diagnostics,
    tree_depth,
)
from heterodyne.cmc.draws_file import ShardDraws


def ar1(seed, rho, chains, draws, shift=0.0):
    """AR(1) chains x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t (unit marginal variance), last chain + shift."""
    e = np.random.default_rng(seed).normal(size=(chains, draws))
    x = np.empty((chains, draws))
    x[:, 0] = e[:, 0]
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * e[:, t]
    x[-1] += shift
    return x


# (seed, rho, chains, draws, shift) of each fixed array
CASES = {
    "iid": (1, 0.0, 4, 1000, 0.0),
    "ar05": (2, 0.5, 4, 1000, 0.0),
    "ar09": (3, 0.9, 4, 1000, 0.0),
    "anti": (4, -0.6, 4, 1000, 0.0),
    "odd": (5, 0.7, 3, 501, 0.0),
    "shifted": (6, 0.3, 4, 1000, 0.5),
}
# ArviZ 1.3.0 (arviz-stats 1.3.3, numpy 2.5.5, scipy 1.18.1) in a separate venv on ar1(*CASES[k]) (arrays
# made with numpy 2.5.5 and passed as .npz): az.rhat(x) (method "rank": max of bulk and folded split
# R-hat), az.ess(x, method="bulk"), az.ess(x, method="tail", prob=(0.05, 0.95)), az.bfmi(x) (the
# array read as energies, one value per chain). ArviZ is not a dependency of this project.
ARVIZ = {
    "iid": (1.00156992781, 4039.14678745, 3404.13834597, (2.03557948434, 1.97133052561, 2.0010625679, 2.02698975601)),
    "ar05": (1.005229729, 1465.60584644, 2544.51314989, (1.04080090143, 1.09841613304, 1.0010122249, 1.02637498916)),
    "ar09": (
        1.00628029669,
        240.851770183,
        529.789457171,
        (0.20808343546, 0.188265913807, 0.2001626989, 0.207033995347),
    ),
    "anti": (0.999924590068, 14408.2399653, 3777.62608665, (3.24429852231, 3.18745300415, 3.25778909482, 3.1985418126)),
    "odd": (1.00641460097, 208.321426055, 525.241204547, (0.541417025438, 0.561195581972, 0.58309581023)),
    "shifted": (
        1.03260154472,
        131.547322511,
        2591.06479808,
        (1.33634702569, 1.42934534417, 1.41068457497, 1.40178896816),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_r_hat_bulk_tail_ess_and_e_bfmi_equal_arviz(case):
    x = ar1(*CASES[case])
    expected_r_hat, expected_bulk, expected_tail, expected_bfmi = ARVIZ[case]
    assert r_hat(x) == pytest.approx(expected_r_hat, rel=1e-9)
    assert ess_bulk(x) == pytest.approx(expected_bulk, rel=1e-9)
    assert ess_tail(x) == pytest.approx(expected_tail, rel=1e-9)
    assert e_bfmi(x) == pytest.approx(expected_bfmi, rel=1e-9)


def test_bulk_ess_of_long_ar1_chains_is_their_integrated_autocorrelation():
    rho, n = 0.8, 20000
    x = ar1(7, rho, 2, n)
    # tau = (1 + rho) / (1 - rho) for AR(1); the estimate's relative error here is a few %
    assert ess_bulk(x) == pytest.approx(2 * n * (1 - rho) / (1 + rho), rel=0.1)


def test_tail_ess_sees_chains_that_never_reach_one_tail():
    x = np.abs(ar1(8, 0.0, 4, 1000))
    x[0] = -x[0]  # only chain 0 visits the lower tail: the I(x <= q05) indicator is 1 in one chain only
    assert ess_bulk(np.abs(x)) > 3000 and ess_tail(x) < 100


def test_e_bfmi_is_two_for_independent_energies_and_small_for_a_random_walk():
    rng = np.random.default_rng(9)
    # E-BFMI = sum (E_n - E_{n-1})^2 / sum (E_n - mean)^2 -> 2 var / var = 2 for independent draws
    assert e_bfmi(rng.normal(size=(2, 20000))) == pytest.approx([2.0, 2.0], rel=0.03)
    walk = np.cumsum(rng.normal(size=(1, 2000)), axis=1)
    assert e_bfmi(walk)[0] < 0.05
    energy = np.array([[1.0, 3.0, 2.0, 6.0]])  # diffs 2, -1, 4; deviations -2, 0, -1, 3
    assert e_bfmi(energy) == pytest.approx([(4 + 1 + 16) / (4 + 0 + 1 + 9)], rel=1e-15)


def test_tree_depth_is_the_smallest_d_with_2_to_the_d_minus_1_at_least_the_steps():
    steps = np.array([[1, 2, 3, 4, 7], [8, 15, 16, 1023, 1024]])
    assert tree_depth(steps).tolist() == [[1, 2, 2, 3, 3], [4, 4, 5, 10, 11]]


def shard_run(draws, diverging, num_steps, energy, step_size, max_tree_depth):
    """The sampler's ShardDraws with the fields that shard_diagnostics reads."""
    return ShardDraws(
        draws=draws,
        unconstrained=None,
        diverging=diverging,
        num_steps=num_steps,
        energy=energy,
        step_size=step_size,
        max_tree_depth=max_tree_depth,
        target_accept=0.9,
        wall_time_s=0.0,
        chain_method="sequential",
    )


CHAINS, DRAWS, DEPTH = 4, 1000, 5


def good_run():
    draws = {"a": ar1(10, 0.0, CHAINS, DRAWS), "b": ar1(11, 0.2, CHAINS, DRAWS)}
    num_steps = np.full((CHAINS, DRAWS), 7)
    num_steps[0, :10] = 30  # depth 5 = the limit, but 30 < 2^5 - 1 steps: not saturated
    return shard_run(
        draws,
        np.zeros((CHAINS, DRAWS), bool),
        num_steps,
        ar1(12, 0.0, CHAINS, DRAWS),
        np.array([0.3, 0.31, 0.29, 0.3]),
        DEPTH,
    )


def test_a_good_shard_passes_and_reports_its_sampler_statistics():
    run = good_run()
    diag = shard_diagnostics(run)
    assert diag["flagged"] is False and diag["flag_reasons"] == []
    assert diag["divergences"] == 0 and diag["frac_at_tree_depth_limit"] == 0.0
    assert diag["tree_depth_max"] == 5 and diag["tree_depth_limit"] == DEPTH
    assert diag["tree_depth_mean"] == pytest.approx((10 * 5 + (CHAINS * DRAWS - 10) * 3) / (CHAINS * DRAWS))
    assert diag["step_size"] == [0.3, 0.31, 0.29, 0.3]
    assert diag["e_bfmi"] == pytest.approx(e_bfmi(run.energy).tolist()) and diag["min_e_bfmi"] > 1.5
    assert diag["max_r_hat"] == pytest.approx(max(r_hat(x) for x in run.draws.values()))
    assert diag["min_ess_tail"] == pytest.approx(min(ess_tail(x) for x in run.draws.values()))
    assert diag["parameters"]["b"]["ess_bulk"] == pytest.approx(ess_bulk(run.draws["b"]))


def test_every_failed_criterion_adds_its_reason():
    run = good_run()
    diverging = run.diverging.copy()
    diverging[1, 5] = diverging[2, 9] = True
    num_steps = run.num_steps.copy()
    num_steps[3, :40] = 2**DEPTH - 1  # 40 of 4000 draws use the whole tree
    energy = run.energy.copy()
    energy[2] = np.cumsum(energy[2]) / 30  # chain 2's energies drift: E-BFMI ~ 1e-3
    draws = {
        "a": run.draws["a"] + np.array([[0.0], [0.0], [0.0], [0.4]]),  # chain 3 off by 0.4 sd
        "b": ar1(13, 0.97, CHAINS, DRAWS),
    }  # tau ~ 66: ESS ~ 60
    diag = shard_diagnostics(run._replace(draws=draws, diverging=diverging, num_steps=num_steps, energy=energy))
    assert diag["flagged"] is True and diag["divergences"] == 2
    assert diag["frac_at_tree_depth_limit"] == 40 / 4000
    reasons = diag["flag_reasons"]
    assert reasons[:2] == ["2 divergences", f"40 draws at tree depth limit {DEPTH}"]
    worst = max(draws, key=lambda name: r_hat(draws[name]))
    assert diag["max_r_hat"] > R_HAT_LIMIT and reasons[2] == f"R-hat {diag['max_r_hat']:.4f} > {R_HAT_LIMIT} ({worst})"
    assert reasons[3:5] == [
        f"bulk ESS {diag['min_ess_bulk']:.0f} < {ESS_MIN} (b)",
        f"tail ESS {diag['min_ess_tail']:.0f} < {ESS_MIN} (b)",
    ]
    assert reasons[5] == f"E-BFMI {e_bfmi(energy)[2]:.3f} < {E_BFMI_MIN} (chain 2)" and len(reasons) == 6


def test_convergence_flags_name_the_worst_quantity_and_fail_on_nan():
    entries = {
        "a": {"r_hat": 1.004, "ess_bulk": 900.0, "ess_tail": 399.0},
        "b": {"r_hat": 1.02, "ess_bulk": 450.0, "ess_tail": 800.0},
    }
    flags = convergence_flags(entries)
    assert flags == {
        "max_r_hat": 1.02,
        "min_ess_bulk": 450.0,
        "min_ess_tail": 399.0,
        "flagged": True,
        "flag_reasons": ["R-hat 1.0200 > 1.01 (b)", "tail ESS 399 < 400 (a)"],
    }
    entries["c"] = {"r_hat": float("nan"), "ess_bulk": 1000.0, "ess_tail": 1000.0}
    assert convergence_flags(entries)["flag_reasons"][0] == "R-hat nan > 1.01 (c)"
    passing = convergence_flags({"a": {"r_hat": R_HAT_LIMIT, "ess_bulk": ESS_MIN, "ess_tail": ESS_MIN}})
    assert passing["flagged"] is False and passing["flag_reasons"] == []


def test_chains_are_extended_while_r_hat_or_ess_misses_its_limit():
    """run_shard extends a shard's chains while _sample_size_reasons is not empty: independent
    draws (4 x 500, R-hat ~ 1, ESS ~ 2000) stop it; a chain shifted by 1 sd (R-hat ~ 1.1 although
    every chain mixes) and AR(1) chains with rho = 0.95 (ESS ~ 2000 x 0.05 / 1.95 ~ 51) do not."""
    from heterodyne.cmc.sampling import _sample_size_reasons

    assert _sample_size_reasons({"a": ar1(11, 0.0, 4, 500), "b": ar1(12, 0.0, 4, 500)}) == []
    shifted = _sample_size_reasons({"a": ar1(13, 0.0, 4, 500, shift=1.0), "b": ar1(14, 0.0, 4, 500)})
    assert any(reason.startswith("R-hat") and reason.endswith("(a)") for reason in shifted)
    slow = _sample_size_reasons({"a": ar1(15, 0.0, 4, 500), "b": ar1(16, 0.95, 4, 500)})
    assert any(reason.startswith("bulk ESS") and reason.endswith("(b)") for reason in slow)
