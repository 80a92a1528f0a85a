"""Reading APS-U and legacy files: labels -> (q, phi), selection, time axis, diagonal, NaN mask."""

import re
import shutil

import cli_args
import h5py
import numpy as np
import pytest
from data_fixtures import numpy_c2, write_test_file

from heterodyne.data.aps import open_correlation_file, symmetrise
from heterodyne.data.dataset import load_dataset
from heterodyne.data.q_bins import folder_names, select_q_bins
from heterodyne.data.selection import select_dataset
from heterodyne.errors import InputError
from heterodyne.provenance import read_provenance_attrs, sha256_file


@pytest.fixture(scope="module")
def aps_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("aps") / "sample_results.hdf"
    return path, write_test_file(path)


@pytest.fixture(scope="module")
def legacy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("legacy") / "sample_legacy.hdf"
    return path, write_test_file(path, layout="legacy", begin_frame=0)


def test_labels_decode_through_index_mapping_not_label_arithmetic(aps_file):
    path, spec = aps_file
    cfile = open_correlation_file(path)
    assert cfile.layout == "aps_u" and cfile.n_rows == 48
    np.testing.assert_allclose(cfile.q_bins, [0.005, 0.01])
    # counters 1..4 hold labels 2..5; grid = 2 q x 4 phi (-20, 25, 70 and the empty extra angle)
    np.testing.assert_array_equal(cfile.map_labels, [2, 3, 4, 5])
    np.testing.assert_array_equal(cfile.map_q_index, [0, 1, 1, 1])
    np.testing.assert_allclose(cfile.map_phi, [70.0, -20.0, 25.0, 70.0])
    # the naive decode (label - 1) // n_phi would put label 4 (q index 1) at q index 0
    assert (4 - 1) // 4 == 0 and cfile.map_q_index[2] == 1


def test_dataset_maps_match_the_truth_at_the_chosen_q(aps_file):
    path, spec = aps_file
    ds = select_dataset(open_correlation_file(path), "x", q=0.0101)
    assert ds.q == 0.01 and list(ds.phi) == [-20.0, 25.0, 70.0]
    iu = np.triu_indices(48, 1)
    for a, phi in enumerate(spec.phi):
        residual = (ds.c2[a] - numpy_c2(spec, 0.01, phi))[iu]
        # wrong q or wrong angle would leave a model-sized residual; the right map leaves noise only
        assert np.std(residual) == pytest.approx(spec.noise[a], rel=0.07)
        assert np.array_equal(ds.c2[a], ds.c2[a].T) and ds.valid[a].all()


def test_q_selection_by_nearest_value_and_by_index(aps_file):
    path, spec = aps_file
    cfile = open_correlation_file(path)
    low = select_dataset(cfile, "x", q=0.0048)
    assert low.q == 0.005 and list(low.phi) == [70.0]
    by_index = select_dataset(cfile, "x", q_index=1, phi=[25.2, -20.0])
    assert by_index.q == 0.01 and list(by_index.phi) == [-20.0, 25.0]
    assert by_index.selection["labels"] == [3, 4]
    np.testing.assert_array_equal(by_index.c2[1], select_dataset(cfile, "x", q=0.01).c2[1])


def test_time_axis_is_absolute_with_window_and_origin(aps_file):
    path, spec = aps_file
    ds = select_dataset(open_correlation_file(path), "x", q=0.01, frames=[5, 45], time_origin=2.5)
    # begin_frame 100 * frame_time 0.01 s = 1 s; dt = 0.01 s * 1 * 10 = 0.1 s
    np.testing.assert_allclose(ds.t, 1.0 + (5 + np.arange(40)) * 0.1 + 2.5, rtol=0, atol=1e-12)
    assert ds.dt == pytest.approx(0.1) and ds.time_origin == 2.5 and ds.c2.shape == (3, 40, 40)
    full = select_dataset(open_correlation_file(path), "x", q=0.01)
    np.testing.assert_array_equal(ds.c2[:, 1:-1, 1:-1], full.c2[:, 6:44, 6:44])


def test_diagonal_is_mean_of_its_two_neighbours(aps_file):
    path, spec = aps_file
    ds = select_dataset(open_correlation_file(path), "x", q=0.01)
    m = ds.c2[0]
    i = np.arange(1, 47)
    np.testing.assert_allclose(m[i, i], 0.5 * (m[i, i - 1] + m[i, i + 1]), rtol=0, atol=1e-12)
    assert m[0, 0] == m[0, 1] and m[47, 47] == m[47, 46]


def test_nonfinite_elements_are_masked_not_propagated(tmp_path, aps_file):
    path, spec = aps_file
    damaged = tmp_path / "damaged.hdf"
    shutil.copy(path, damaged)
    with h5py.File(damaged, "r+") as f:
        m = f["xpcs/twotime/correlation_map/c2_00003"]
        block = m[()]
        block[3, 10], block[20, 21], block[7, 7] = np.nan, np.inf, np.nan
        m[...] = block
    ds = select_dataset(open_correlation_file(damaged), "x", q=0.01)
    valid = ds.valid[1]  # label 4 = (q, 25 deg) is the second angle
    assert not valid[3, 10] and not valid[10, 3] and not valid[20, 21] and not valid[7, 7]
    assert valid.sum() == 48 * 48 - 5 and ds.valid[0].all() and np.isfinite(ds.c2).all()
    clean = select_dataset(open_correlation_file(path), "x", q=0.01)
    fill = np.median(clean.c2[1][valid & ~np.eye(48, dtype=bool)])
    assert ds.c2[1][3, 10] == pytest.approx(fill, abs=1e-9)
    # the diagonal at 7 is rebuilt from finite neighbours; 20/21 use the remaining neighbour
    assert ds.c2[1][21, 21] == ds.c2[1][21, 22]


def test_symmetrise_accepts_either_triangle():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(6, 6))
    full = full + full.T
    np.testing.assert_array_equal(symmetrise(np.triu(full)), full)
    np.testing.assert_array_equal(symmetrise(np.tril(full)), full)
    np.testing.assert_array_equal(symmetrise(full), full)


def test_legacy_file_reads_like_the_aps_u_file(aps_file, legacy_file):
    path, spec = aps_file
    legacy_path, _ = legacy_file
    cfile = open_correlation_file(legacy_path)
    assert cfile.layout == "legacy" and cfile.dt == pytest.approx(0.1) and cfile.first_time == 0.0
    # processed bins are listed in reverse: map g2_00001 carries label 3 (the third angle)
    np.testing.assert_array_equal(cfile.map_labels, [3, 2, 1])
    legacy = select_dataset(cfile, "x")
    aps = select_dataset(open_correlation_file(path), "x", q=0.01)
    assert list(legacy.phi) == list(aps.phi) and legacy.q == aps.q
    np.testing.assert_allclose(legacy.t, np.arange(48) * 0.1, atol=1e-12)
    np.testing.assert_allclose(legacy.c2[:, 2:, 2:], aps.c2[:, 2:, 2:], atol=2e-6)


def test_cli_ingest_writes_dataset_with_provenance(tmp_path, aps_file):
    path, spec = aps_file
    config = tmp_path / "config.yaml"
    config.write_text(f"datasets:\n  s1: {{file: {path}, q: 0.01, phi: [70.0, -20.0], frames: [0, 40]}}\n")
    out = tmp_path / "results" / "s1" / "q0.01" / "dataset.h5"
    assert cli_args.ingest(config, "s1", out) == 0
    ds = load_dataset(out)
    assert list(ds.phi) == [-20.0, 70.0] and ds.c2.shape == (2, 40, 40) and ds.q == 0.01
    assert ds.source_sha256 == sha256_file(path) and ds.selection["frames"] == [0, 40]
    with h5py.File(out, "r") as f:
        record = read_provenance_attrs(f)
    q_bins = tmp_path / "results" / "s1" / "q_bins.json"
    assert record["input_sha256"] == {str(path): sha256_file(path), str(q_bins): sha256_file(q_bins)}
    assert record["config_section"]["dataset"]["phi"] == [70.0, -20.0]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"q": "all"}, [("q0.005", 0, 1), ("q0.01", 1, 3)]),
        ({"q": [0.0101, 0.0049]}, [("q0.005", 0, 1), ("q0.01", 1, 3)]),
        ({"q": 0.0099}, [("q0.01", 1, 3)]),
        ({"q_index": [1]}, [("q0.01", 1, 3)]),
        ({"q": "all", "phi": [70.0]}, [("q0.005", 0, 1), ("q0.01", 1, 1)]),
        ({"q": "all", "frames": [4, 24]}, [("q0.005", 0, 1), ("q0.01", 1, 3)]),
    ],
)
def test_q_selection_gives_one_folder_per_bin(aps_file, entry, expected):
    """The file holds maps at q = 0.005 (one angle, 70 deg) and 0.01 (three angles), N = 48
    frames; each bin counts its usable points: n_angles x n (n - 1) / 2 for a window of n frames
    (every element of the simulated maps is valid)."""
    bins = select_q_bins(
        open_correlation_file(aps_file[0]),
        q=entry.get("q"),
        q_index=entry.get("q_index"),
        phi=entry.get("phi"),
        frames=entry.get("frames"),
    )
    assert [(b.folder, b.index, b.n_angles) for b in bins] == expected
    n = 20 if "frames" in entry else 48
    assert [b.n_points for b in bins] == [n_angles * n * (n - 1) // 2 for _, _, n_angles in expected]
    assert [b.q for b in bins] == [[0.005, 0.01][i] for _, i, _ in expected]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"q": [0.01, 0.0101]}, ["select the same q bin", "q = 0.01"]),
        ({"q": [0.01, 0.03]}, ["outside the file's q grid", "maps exist at q = 0.005, 0.01"]),
        ({"q_index": [2]}, ["q_index 2 out of range", "2 q bins"]),
        ({"q": "all", "phi": [-20.0]}, ["phi = -20 deg not present at q = 0.005"]),
    ],
)
def test_q_selection_errors_name_the_bins_present(aps_file, entry, words):
    with pytest.raises(InputError) as err:
        select_q_bins(
            open_correlation_file(aps_file[0]), q=entry.get("q"), q_index=entry.get("q_index"), phi=entry.get("phi")
        )
    for word in words:
        assert word in str(err.value)


def test_folder_names_add_digits_only_where_bins_would_collide():
    assert folder_names([0.0071, 0.0142]) == ["q0.0071", "q0.0142"]
    assert folder_names([0.00712341, 0.00712349, 0.01]) == ["q0.0071234", "q0.0071235", "q0.01"]


def test_legacy_map_names_carry_labels_without_processed_list(tmp_path, legacy_file):
    legacy_path, _ = legacy_file
    renamed = tmp_path / "renamed.hdf"
    shutil.copy(legacy_path, renamed)
    with h5py.File(renamed, "r+") as f:
        labels = f["xpcs/qphi_bin_to_process"][()].ravel()
        del f["xpcs/qphi_bin_to_process"]
        group = f["exchange/C2T_all"]
        for counter, label in enumerate(labels, start=1):
            group.move(f"g2_{counter:05d}", f"C2T_{label:05d}")
    cfile = open_correlation_file(renamed)
    np.testing.assert_array_equal(cfile.map_labels, [1, 2, 3])
    np.testing.assert_array_equal(
        select_dataset(cfile, "x").c2, select_dataset(open_correlation_file(legacy_path), "x").c2
    )


def test_legacy_counter_names_without_processed_list_are_refused(tmp_path, legacy_file):
    # g2_00001.. count the maps in processed order (here labels 3, 2, 1): reading the counter as
    # the label would swap the first and last angle
    legacy_path, _ = legacy_file
    stripped = tmp_path / "no_processed_list.hdf"
    shutil.copy(legacy_path, stripped)
    with h5py.File(stripped, "r+") as f:
        del f["xpcs/qphi_bin_to_process"]
    with pytest.raises(InputError, match=r"qphi_bin_to_process' is missing.*'g2_00001'.*counters"):
        open_correlation_file(stripped)


def test_maps_far_from_a_unit_baseline_are_flagged(tmp_path, aps_file, caplog):
    path, _ = aps_file
    assert select_dataset(open_correlation_file(path), "x", q=0.01).selection["warnings"] == []
    scaled = tmp_path / "integer_scaled.hdf"
    shutil.copy(path, scaled)
    with h5py.File(scaled, "r+") as f:  # c2 stored as integers x 1000, as some exports do
        for m in f["xpcs/twotime/correlation_map"].values():
            m[...] = np.round(m[()] * 1000)
    ds = select_dataset(open_correlation_file(scaled), "x", q=0.01, phi=[25.0])
    assert len(ds.selection["warnings"]) == 1
    median = float(re.search(r"median c2 = (\S+),", ds.selection["warnings"][0]).group(1))
    assert "c2_00003" in ds.selection["warnings"][0] and 1000 < median < 1100  # 1000 x (1.02 + decay)
    assert caplog.messages == ds.selection["warnings"]
