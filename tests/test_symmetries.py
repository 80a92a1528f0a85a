"""The model's exact symmetries, the conventions that pick one representative, and the refusal of
undetermined parameter combinations: each checked against c2 computed by the physics kernel."""

import numpy as np
import pytest

from heterodyne.core.jax_backend import compute_c2_heterodyne_multiphi
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, as_vector, default_bounds
from heterodyne.core.symmetries import (
    canonical,
    exchange_absorber,
    exchange_components,
    exchanged_start,
    fold_velocity,
    transport_at,
)
from heterodyne.fit.identifiability import undetermined_combinations

T = 0.5 + 0.1 * np.arange(40)
PHI = np.array([0.0, 40.0, 100.0])
CONSTANT = as_vector(
    {
        "D0_ref": 6000.0,
        "alpha_ref": 0.1,
        "D_offset_ref": 20.0,
        "D0_sample": 2000.0,
        "alpha_sample": 0.1,
        "D_offset_sample": 20.0,
        "v0": -30.0,
        "beta": 0.2,
        "v_offset": -3.0,
        "f0": 0.35,
        "f3": 0.1,
        "phi0": 7.0,
    }
)


def c2(params):
    return np.asarray(compute_c2_heterodyne_multiphi(params, T, 0.01, 0.1, PHI, np.full(3, 0.2), np.ones(3)))


def test_canonical_representative_has_the_same_c2():
    free = [n for n in PARAMETER_NAMES if n not in ("f1", "f2", "f3")]
    absorber = exchange_absorber(free, CONSTANT)
    assert absorber == "f0"
    lower, upper = default_bounds()
    rep = canonical(CONSTANT, T.mean(), absorber, lower, upper)
    assert rep[INDEX["v0"]] == 30.0 and rep[INDEX["v_offset"]] == 3.0
    j_ref, j_sample = transport_at(rep, T.mean())
    assert j_ref <= j_sample
    assert rep[INDEX["D0_ref"]] == 2000.0 and rep[INDEX["f0"]] == pytest.approx(1 - 0.35 - 0.2)
    np.testing.assert_allclose(c2(rep), c2(CONSTANT), rtol=0, atol=1e-13)
    # a stack of draws: each row mapped on its own; an already canonical row is unchanged
    stack = canonical(np.stack([CONSTANT, rep]), T.mean(), absorber, lower, upper)
    np.testing.assert_array_equal(stack, np.stack([rep, rep]))


def test_exchange_absorbed_by_f3_and_velocity_fold_keep_c2():
    exchanged = exchange_components(CONSTANT, "f3")
    assert exchanged[INDEX["f3"]] == pytest.approx(1 - 0.7 - 0.1)
    np.testing.assert_allclose(c2(exchanged), c2(CONSTANT), rtol=0, atol=1e-13)
    np.testing.assert_allclose(c2(fold_velocity(CONSTANT)), c2(CONSTANT), rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    "free, values, expected",
    [
        (["D0_ref", "D0_sample", "f0", "f1"], {}, None),  # time-dependent fraction
        (["D0_ref", "alpha_ref", "D0_sample", "f0"], {}, None),  # alpha_sample fixed, ref free
        (["D0_ref", "D0_sample", "f0"], {"alpha_ref": 0.1}, None),  # fixed alphas differ
        (["D0_ref", "D0_sample", "f0", "f3"], {}, None),  # only f0 + f3 determined
        (["D0_ref", "D0_sample"], {"f0": 0.3, "f3": 0.2}, ""),  # x_s = 1/2 fixed
        (["D0_ref", "D0_sample", "f3"], {}, "f3"),
    ],
)
def test_exchange_absorber(free, values, expected):
    assert exchange_absorber(free, as_vector(values)) == expected


DEGENERATE = [
    # (free, fixed values, a direction in parameter space that leaves c2 unchanged)
    (["D0_ref", "D_offset_ref"], {"alpha_ref": 0.0}, {"D0_ref": 50.0, "D_offset_ref": -50.0}),
    (["v0", "v_offset"], {"beta": 0.0}, {"v0": 5.0, "v_offset": -5.0}),
    (["alpha_sample"], {"D0_sample": 0.0, "D_offset_sample": 300.0}, {"alpha_sample": 0.3}),
    (["beta"], {"v0": 0.0, "v_offset": 2.0}, {"beta": 0.3}),
    (["f0", "f3"], {"f1": 0.0, "f0": 0.3, "f3": 0.1}, {"f0": 0.05, "f3": -0.05}),
    (["f2"], {"f1": 0.0, "f0": 0.3}, {"f2": 2.0}),
    (["f1", "f2"], {"f0": 0.0, "f3": 0.3}, {"f1": 0.1, "f2": 1.0}),
]


@pytest.mark.parametrize("free, fixed, direction", DEGENERATE)
def test_undetermined_combinations_are_refused_and_really_degenerate(free, fixed, direction):
    values = as_vector({"D0_ref": 3000.0, "D0_sample": 9000.0, "v0": 40.0, "f0": 0.3, **fixed})
    assert undetermined_combinations(free, values), free
    moved = values.copy()
    for name, delta in direction.items():
        moved[INDEX[name]] += delta
    np.testing.assert_allclose(c2(moved), c2(values), rtol=0, atol=1e-12)


def test_f0_f2_degenerate_when_fraction_grows():
    values = as_vector({"D0_ref": 3000.0, "D0_sample": 9000.0, "f0": 0.2, "f1": 0.1, "f2": 1.0})
    assert undetermined_combinations(["f0", "f1", "f2"], values)
    moved = values.copy()
    moved[INDEX["f2"]] += 2.0
    moved[INDEX["f0"]] *= np.exp(0.1 * 2.0)  # f0 exp(-f1 f2) unchanged
    np.testing.assert_allclose(c2(moved), c2(values), rtol=0, atol=1e-12)


def test_identifiable_configs_pass():
    demo_free = ["D0_ref", "alpha_ref", "D0_sample", "alpha_sample", "v0", "beta", "f0"]
    assert undetermined_combinations(demo_free, as_vector({}), n_angles=4) == []
    assert (
        undetermined_combinations(demo_free + ["f1", "D_offset_ref", "phi0"], as_vector({"f1": 0.05}), n_angles=3) == []
    )
    assert undetermined_combinations(["v0", "phi0"], as_vector({}), n_angles=1)


def test_exchanged_start_matches_the_complementary_fraction_at_two_times():
    growing = as_vector(
        {"D0_ref": 3000.0, "alpha_ref": 0.2, "D0_sample": 9000.0, "f0": 0.4, "f1": 0.04, "f2": 1.0, "f3": 0.05}
    )
    start = exchanged_start(growing, 2.0, 12.0)
    assert (start[INDEX["D0_ref"]], start[INDEX["alpha_ref"]], start[INDEX["D0_sample"]]) == (9000.0, 0.0, 3000.0)
    for t in (2.0, 12.0):
        x_s = growing[INDEX["f0"]] * np.exp(growing[INDEX["f1"]] * (t - 1.0)) + 0.05
        assert start[INDEX["f0"]] * np.exp(start[INDEX["f1"]] * (t - 1.0)) + 0.05 == pytest.approx(1 - x_s)
    assert exchanged_start(as_vector({"f0": 0.9, "f1": 0.2}), 2.0, 12.0) is None  # x_s reaches 1
