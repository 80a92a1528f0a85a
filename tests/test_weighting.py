"""Per-angle weighting: sigma, contrast and offset against the truth used to simulate the data."""

import json

import cli_args
import numpy as np
import pytest
from data_fixtures import make_dataset

from heterodyne.cli import main
from heterodyne.data.dataset import load_dataset
from heterodyne.noise_model import estimate_angle_noise
from heterodyne.weighting.estimate import angle_weights, estimate_contrast_offset
from heterodyne.weighting.weights_file import load_weights


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("weights")
    data_path, spec = make_dataset(directory)
    return directory, data_path, spec


def test_robust_estimates_within_10_percent_of_truth(simulated):
    _, data_path, spec = simulated
    w = angle_weights(load_dataset(data_path), "robust")
    np.testing.assert_allclose(w.phi, spec.phi)
    np.testing.assert_allclose(w.sigma, spec.noise, rtol=0.10)  # 0.005, 0.01, 0.02
    np.testing.assert_allclose(w.contrast, spec.contrast, rtol=0.10)
    np.testing.assert_allclose(w.offset, spec.offset, rtol=0.10)
    # the offset is far better than 10 %: the correlation has decayed at the longest lags
    np.testing.assert_allclose(w.offset, spec.offset, atol=3 * max(spec.noise) / 10)


def test_uniform_method_sets_sigma_one_and_keeps_levels(simulated):
    _, data_path, spec = simulated
    ds = load_dataset(data_path)
    uniform, robust = angle_weights(ds, "uniform"), angle_weights(ds, "robust")
    np.testing.assert_array_equal(uniform.sigma, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(uniform.contrast, robust.contrast)
    assert uniform.method == "uniform"


def test_noise_estimate_on_aging_signal_with_masked_elements():
    # smooth two-time signal whose decay rate grows with age, plus N(0, 0.03^2) per unordered pair
    rng = np.random.default_rng(11)
    n = 60
    t = np.arange(n) * 0.1
    rate = 0.5 + 0.2 * (t[:, None] + t[None, :]) / 2
    signal = 1.0 + 0.3 * np.exp(-rate * np.abs(t[:, None] - t[None, :]))
    upper = np.triu(rng.normal(0.0, 0.03, (n, n)), 1)
    c2 = signal + upper + upper.T
    valid = np.ones((n, n), bool)
    valid[5, 30] = valid[30, 5] = False
    c2[5, 30] = c2[30, 5] = 1e6  # masked outlier must not matter
    assert estimate_angle_noise(c2, valid) == pytest.approx(0.03, rel=0.08)
    contrast, offset = estimate_contrast_offset(c2, valid)
    # truth: offset 1 (decayed: exp(-rate * 4.4 s) < 0.03 at the longest lags), contrast 0.3
    assert offset == pytest.approx(1.0, abs=0.02) and contrast == pytest.approx(0.3, rel=0.1)


def test_cli_weight_writes_json_with_provenance(simulated, tmp_path):
    directory, data_path, spec = simulated
    config = tmp_path / "config.yaml"
    config.write_text("datasets:\n  s1: {file: unused.hdf}\nweight: {method: robust}\n")
    out = tmp_path / "weights.json"
    rc = main(["weight", *cli_args.settings(config, "weight"), "--data", str(data_path), "--output", str(out)])
    assert rc == 0
    w = load_weights(out)
    np.testing.assert_allclose(w.sigma, spec.noise, rtol=0.10)
    record = json.loads(out.read_text())["provenance"]
    assert record["config_section"] == {"method": "robust", "long_lag_fraction": 0.25}
    assert str(data_path) in record["input_sha256"]


def test_cli_weight_rejects_constant_map(tmp_path, capsys):
    from heterodyne.data.dataset import Dataset, save_dataset

    ds = Dataset(
        c2=np.ones((1, 10, 10)),
        valid=np.ones((1, 10, 10), bool),
        t=np.arange(10.0),
        phi=np.array([0.0]),
        dt=1.0,
        q=0.01,
    )
    data = tmp_path / "dataset.h5"
    save_dataset(data, ds, {"test": True})
    config = tmp_path / "config.yaml"
    config.write_text("datasets:\n  s1: {file: unused.hdf}\n")
    out = tmp_path / "weights.json"
    rc = main(["weight", *cli_args.settings(config, "weight"), "--data", str(data), "--output", str(out)])
    assert rc == 2 and not out.exists()
    assert "phi = 0 deg" in capsys.readouterr().err
