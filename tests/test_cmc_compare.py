"""The consensus posterior against the NLSQ fit and against the prior (heterodyne.cmc.compare),
on hand-made numbers."""

import numpy as np
import pytest

from heterodyne.cmc.compare import nlsq_comparison, prior_sd, undetermined
from heterodyne.cmc.model import Prior


def _prior(sd, normal):
    n = len(sd)
    return Prior(
        centre=np.zeros(n),
        stderr=np.ones(n),
        low=np.full(n, -np.inf),
        high=np.full(n, np.inf),
        normal=np.asarray(normal, bool),
        sd=np.asarray(sd, float),
    )


def test_comparison_lists_free_physics_parameters_in_stderr_units():
    nlsq = {
        "parameters": {
            "D0_ref": {"value": 2000.0, "stderr": 50.0, "fixed": False},
            "alpha_ref": {"value": 0.0, "stderr": None, "fixed": True},
            "v0": {"value": 150.0, "stderr": 2.0, "fixed": False},
        }
    }
    posterior = {
        "D0_ref": {"mean": 2075.0, "sd": 60.0},
        "v0": {"mean": 149.0, "sd": 1.0},
        "contrast_0": {"mean": 0.2, "sd": 0.01},
    }
    rows = nlsq_comparison(posterior, nlsq)
    assert list(rows) == ["D0_ref", "v0"]
    assert rows["D0_ref"] == {
        "nlsq_value": 2000.0,
        "nlsq_stderr": 50.0,
        "cmc_mean": 2075.0,
        "cmc_sd": 60.0,
        "shift_in_stderr": 1.5,
        "sd_in_stderr": 1.2,
    }
    assert rows["v0"]["shift_in_stderr"] == -0.5 and rows["v0"]["sd_in_stderr"] == 0.5


def test_prior_sd_is_the_normal_sd_or_the_uniform_half_width_over_sqrt3():
    # uniform on [c - 3, c + 3]: variance 6^2 / 12 = 3, sd sqrt(3)
    assert prior_sd(_prior([2.0, 3.0], [True, False])) == pytest.approx([2.0, np.sqrt(3.0)], rel=1e-15)


def test_undetermined_lists_posteriors_wider_than_0_3_prior_sd():
    names = ["a", "b", "c", "d"]
    prior = _prior([10.0, 10.0, 3.0, 3.0], [True, True, False, False])  # prior sd 10, 10, sqrt 3, sqrt 3
    posterior = {"a": {"sd": 2.9}, "b": {"sd": 3.1}, "c": {"sd": 0.5}, "d": {"sd": 0.53}}
    found = undetermined(posterior, names, prior)
    # 3.1 / 10 = 0.31 > 0.3; 0.53 / sqrt(3) = 0.306 > 0.3; a (0.29) and c (0.289) are determined
    assert [entry["parameter"] for entry in found] == ["b", "d"]
    assert found[0] == {"parameter": "b", "sd": 3.1, "prior_sd": 10.0, "sd_over_prior_sd": pytest.approx(0.31)}
    assert found[1]["prior_sd"] == pytest.approx(np.sqrt(3.0)) and found[1]["sd_over_prior_sd"] == pytest.approx(
        0.53 / np.sqrt(3.0)
    )
