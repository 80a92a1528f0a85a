"""`heterodyne simulate`: stored layout, model, noise level, diagonal bump, truth attributes."""

import json

import cli_args
import h5py
import numpy as np
import pytest
from data_fixtures import TEST_TRUTH, numpy_c2, write_test_file

from heterodyne.cli import main
from heterodyne.provenance import read_provenance_attrs


@pytest.fixture(scope="module")
def aps_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "sim_results.hdf"
    return path, write_test_file(path)


def _maps_by_grid(path):
    """{(q, phi): stored map} decoded with the label -> grid mapping (written out here)."""
    with h5py.File(path, "r") as f:
        q_list = f["xpcs/qmap/dynamic_v_list_dim0"][()]
        phi_list = f["xpcs/qmap/dynamic_v_list_dim1"][()]
        mapping = f["xpcs/qmap/dynamic_index_mapping"][()]
        labels = f["xpcs/twotime/processed_bins"][()]
        out = {}
        for counter, label in enumerate(labels, start=1):
            cell = mapping[label - 1]
            out[(q_list[cell // len(phi_list)], phi_list[cell % len(phi_list)])] = f[
                f"xpcs/twotime/correlation_map/c2_{counter:05d}"
            ][()]
    return out


def test_storage_is_float32_upper_triangle_with_empty_cells(aps_file):
    path, spec = aps_file
    with h5py.File(path, "r") as f:
        mapping = f["xpcs/qmap/dynamic_index_mapping"][()]
        stored = f["xpcs/twotime/correlation_map/c2_00001"]
        assert stored.dtype == np.float32 and stored.shape == (48, 48)
        assert np.all(np.tril(stored[()], -1) == 0) and np.all(np.diag(stored[()]) > 0.9)
        n_cells = int(np.prod(f["xpcs/qmap/dynamic_num_pts"][()]))
        truth = json.loads(f.attrs["simulation_truth"])
        assert read_provenance_attrs(f)["config_section"]["seed"] == TEST_TRUTH["seed"]
    # 2 q x (3 + 1 extra) phi cells; the extra angle and (q/2, first angle) are empty
    assert n_cells == 8 and len(mapping) == 5 and not np.array_equal(mapping, np.arange(5))
    assert truth["parameters"] == TEST_TRUTH["parameters"] and truth["noise"] == TEST_TRUTH["noise"]
    assert truth["dt"] == pytest.approx(0.1) and truth["t0"] == pytest.approx(1.0)


def test_maps_are_model_plus_noise_of_given_sigma(aps_file):
    path, spec = aps_file
    maps = _maps_by_grid(path)
    iu = np.triu_indices(spec.n_frames, 1)
    # (q/2, first angle) is the empty cell; (q/2, second angle) holds label 1, left unprocessed
    assert set(maps) == {(q, phi) for q in (0.5 * spec.q, spec.q) for phi in spec.phi} - {
        (0.5 * spec.q, spec.phi[0]),
        (0.5 * spec.q, spec.phi[1]),
    }
    for (q, phi), stored in maps.items():
        a = spec.phi.index(phi)
        residual = stored.astype(float) - numpy_c2(spec, q, phi)
        off = residual[iu]
        # 1128 independent draws: the sample sd is within ~4 % of sigma (2 sd of its spread)
        assert np.std(off) == pytest.approx(spec.noise[a], rel=0.07)
        assert abs(np.mean(off)) < 4 * spec.noise[a] / np.sqrt(off.size)
        diag = np.diag(residual)
        assert np.mean(diag) == pytest.approx(spec.diagonal_excess, abs=4 * spec.noise[a] / np.sqrt(48))


def test_legacy_layout_holds_the_same_maps(tmp_path, aps_file):
    path, spec = aps_file
    legacy = tmp_path / "legacy.hdf"
    write_test_file(legacy, layout="legacy", begin_frame=0)
    aps = _maps_by_grid(path)
    with h5py.File(legacy, "r") as f:
        labels = f["xpcs/qphi_bin_to_process"][()].ravel()
        phis = f["xpcs/dphilist"][()].ravel()
        assert f["xpcs/dqlist"].shape == (1, 4) and f["xpcs/avg_frames"].shape == (1, 1)
        for counter, label in enumerate(labels, start=1):
            stored = f[f"exchange/C2T_all/g2_{counter:05d}"][()]
            # same seed and q -> same noise; begin_frame only shifts t, which a stationary truth
            # ignores except at t = 0, where the kernel sets J(0) = t^0 := 0 (row/column 0)
            np.testing.assert_allclose(stored[1:, 1:], aps[(spec.q, phis[label - 1])][1:, 1:], atol=2e-6)
            assert np.all(np.tril(stored, -1) == 0)


def test_cli_simulate_writes_the_configured_file(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "datasets:\n  demo: {file: demo.hdf, simulate: true}\n"
        "simulate: {n_frames: 20, phi: [10.0, 50.0], contrast: [0.3, 0.2], "
        "offset: [1.0, 1.1], noise: [0.01, 0.03], seed: 3}\n"
    )
    out = tmp_path / "demo.hdf"
    assert main(["simulate", *cli_args.settings(config, "simulate"), "--output", str(out)]) == 0
    with h5py.File(out, "r") as f:
        truth = json.loads(f.attrs["simulation_truth"])
        assert f["xpcs/twotime/correlation_map/c2_00001"].shape == (20, 20)
        assert f["entry/instrument/detector_1/frame_time"][()] * f["xpcs/twotime/config/avg_frame"][
            ()
        ] == pytest.approx(0.1)
    assert truth["phi"] == [10.0, 50.0] and truth["parameters"]["D0_sample"] == 5000.0


def test_cli_simulate_rejects_per_angle_lists_of_wrong_length(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(
        "datasets:\n  demo: {file: demo.hdf, simulate: true}\nsimulate: {phi: [10.0, 50.0], contrast: [0.3]}\n"
    )
    out = tmp_path / "demo.hdf"
    assert main(["simulate", *cli_args.settings(config, "simulate"), "--output", str(out)]) == 2
    assert "simulate.contrast" in capsys.readouterr().err and not out.exists()
