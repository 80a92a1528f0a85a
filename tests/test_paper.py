"""`heterodyne paper` on a small results tree: the saved set of tests/figures_fixtures.py (simulated
at each bin's q) copied into the per-q layout (dataset tiny with q bins q0.01 and q0.02, dataset
tiny2 with q0.01); each bin's nlsq.json gets its own values and standard errors (BIN_FACTORS) and
the covariance block a fit writes.

Checks: the planned PDFs and README.md are written; line figures are vector (no image XObject);
the page width is the configured column width; the metadata's config SHA-256 equals an
independent hash of the validated settings and its input SHA-256s those of the files; one font
family; README lists every PDF with its inputs' SHA-256s; global rcParams are untouched; the
study figure's NLSQ points are the nlsq.json values and the cross-q figure's weighted-mean line is
their inverse-variance mean computed here; defaults of an empty entry; bad dataset / q / angle /
font: exit 2, one line naming what is available, and no output left.
"""

import copy
import hashlib
import json
import re
import shutil
from pathlib import Path

import figures_fixtures as ff
import numpy as np
import pytest
from matplotlib import pyplot as plt

import heterodyne
from heterodyne.cli import main
from heterodyne.config import validate_section
from heterodyne.data.q_bins import QBin, save_q_bins
from heterodyne.plots import style  # noqa: F401  (selects Agg on import, rcParams backend_fallback)
from heterodyne.plots.cross_q import paper_cross_q
from heterodyne.plots.paper import rule_inputs
from heterodyne.plots.paper_plan import COLUMN_WIDTH_IN, datasets_used, plan_figures
from heterodyne.plots.study import paper_study

LAYOUT = {"tiny": {"q0.01": 0.01, "q0.02": 0.02}, "tiny2": {"q0.01": 0.01}}
LABELS = {"tiny": 25.0, "tiny2": 40.0}
#: (dataset, q folder) -> factors of its free parameters' NLSQ values and standard errors
BIN_FACTORS = {("tiny", "q0.01"): (1.0, 1.0), ("tiny", "q0.02"): (1.1, 2.0), ("tiny2", "q0.01"): (0.95, 1.5)}
SINGLE, DOUBLE = 3.37 * 72, 7.0 * 72  # pt
#: result files each figure kind reads, relative to the q folder
KIND_FILES = {
    "maps": ["dataset.h5", "weights.json", "nlsq.json", "nlsq.h5"],
    "cuts": ["dataset.h5", "nlsq.json", "nlsq.h5"],
    "physics": ["dataset.h5", "nlsq.json", "nlsq.h5", "cmc/combined.h5"],
    "cross_q": ["dataset.h5", "nlsq.json", "cmc/summary.json"],
    "study": ["nlsq.json", "cmc/summary.json"],
}
FULL = {
    "maps": [{"dataset": "tiny", "q": 0.01, "phi": [70, 10], "width": "double"}],
    "cuts": [{"dataset": "tiny2", "phi": [10]}],
    "physics": [{"dataset": "tiny", "q": "q0.02"}],
    "cross_q": ["tiny"],
    "study": True,
    "width": "single",
    "font_size": 7,
}
FULL_PDFS = {
    "maps_tiny_q0.01.pdf": ("maps", DOUBLE, ["tiny/q0.01"]),
    "cuts_tiny2_q0.01.pdf": ("cuts", SINGLE, ["tiny2/q0.01"]),
    "physics_tiny_q0.02.pdf": ("physics", SINGLE, ["tiny/q0.02"]),
    "cross_q_tiny.pdf": ("cross_q", SINGLE, ["tiny/q0.01", "tiny/q0.02"]),
    "study.pdf": ("study", SINGLE, ["tiny/q0.01", "tiny/q0.02", "tiny2/q0.01"]),
}
# an empty entry list per kind left out: first dataset (tiny), lowest q (q0.01), first two angles
DEFAULTS = {"cross_q": ["tiny"], "study": True, "font_family": "DejaVu Serif"}
DEFAULT_PDFS = {
    "maps_tiny_q0.01.pdf": ("maps", DOUBLE, ["tiny/q0.01"]),
    "cuts_tiny_q0.01.pdf": ("cuts", SINGLE, ["tiny/q0.01"]),
    "physics_tiny_q0.01.pdf": ("physics", SINGLE, ["tiny/q0.01"]),
    "cross_q_tiny.pdf": ("cross_q", SINGLE, ["tiny/q0.01", "tiny/q0.02"]),
    "study.pdf": ("study", DOUBLE, ["tiny/q0.01", "tiny/q0.02", "tiny2/q0.01"]),
}


def settings_of(paper, results):
    datasets = {name: {"file": str(results.parent / f"{name}.hdf"), "label": LABELS[name]} for name in LAYOUT}
    return {"paper": paper, "datasets": datasets, "figures": {"cut_ages": 3}}


def run_paper(settings, results, outdir, *extra):
    return main(
        ["paper", "--settings", json.dumps(settings), "--results", str(results), "--outdir", str(outdir), *extra]
    )


def vary_nlsq(path, value_factor, se_factor):
    """Scale the free parameters' values and standard errors in the nlsq.json at ``path`` and add
    the covariance block a fit writes (diagonal: se^2 over the free parameters)."""
    record = json.loads(path.read_text())
    free = [name for name, entry in record["parameters"].items() if not entry["fixed"]]
    for name in free:
        record["parameters"][name]["value"] *= value_factor
        record["parameters"][name]["stderr"] *= se_factor
    record["covariance"] = {
        "names": free,
        "matrix": np.diag([record["parameters"][name]["stderr"] ** 2 for name in free]).tolist(),
    }
    path.write_text(json.dumps(record))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    saved = {
        0.01: ff.build_saved_results(base / "saved_results"),  # the set other tests share
        0.02: ff.build_saved_results(base / "saved_results_q0.02", 0.02),
    }
    results = tmp_path_factory.mktemp("paper") / "results"
    n_points = len(ff.PHI) * ff.N_TIMES * (ff.N_TIMES - 1) // 2 - len(ff.INVALID_PAIRS)
    for name, folders in LAYOUT.items():
        for folder, q in folders.items():
            shutil.copytree(
                saved[q]["results"], results / name / folder, ignore=shutil.ignore_patterns("benchmarks", "figures")
            )
            vary_nlsq(results / name / folder / "nlsq.json", *BIN_FACTORS[name, folder])
        save_q_bins(
            results / name / "q_bins.json",
            [QBin(folder, i, q, len(ff.PHI), n_points) for i, (folder, q) in enumerate(folders.items())],
            {"test": "q bins"},
        )
    return results


@pytest.fixture(scope="module")
def written(tree):
    """The FULL settings drawn; (settings, outdir, rc before, rc after)."""
    settings, outdir = settings_of(FULL, tree), tree.parent / "paper_full"
    before = dict(plt.rcParams)
    assert run_paper(settings, tree, outdir) == 0
    return settings, outdir, before, dict(plt.rcParams)


@pytest.fixture(scope="module")
def defaults(tree):
    """The DEFAULTS settings drawn; (settings, outdir)."""
    settings, outdir = settings_of(DEFAULTS, tree), tree.parent / "paper_defaults"
    assert run_paper(settings, tree, outdir) == 0
    return settings, outdir


def plan_bins(tree, kind):
    """The QResults of the first ``kind`` figure of the FULL settings."""
    filled = {name: validate_section(name, copy.deepcopy(value)) for name, value in settings_of(FULL, tree).items()}
    return next(plan.bins for plan in plan_figures(filled, tree) if plan.kind == kind)


def nlsq_entry(tree, folder, name):
    """(value, stderr) of parameter ``name`` in the nlsq.json of ``folder`` (dataset/q folder)."""
    entry = json.loads((tree / folder / "nlsq.json").read_text())["parameters"][name]
    return entry["value"], entry["stderr"]


def cases(written, defaults):
    """(settings, outdir, {pdf: (kind, width pt, q folders)}, font family prefix) per run."""
    return [(written[0], written[1], FULL_PDFS, "DejaVuSans"), (defaults[0], defaults[1], DEFAULT_PDFS, "DejaVuSerif")]


def pdf_string(data, key):
    """The literal string value of ``/key`` in a PDF (backslash escapes undone)."""
    at = data.index(b"/" + key.encode() + b" (") + len(key) + 3
    out = bytearray()
    while data[at : at + 1] != b")":
        if data[at : at + 1] == b"\\":
            at += 1
            out += {b"n": b"\n", b"r": b"\r"}.get(data[at : at + 1], data[at : at + 1])
        else:
            out += data[at : at + 1]
        at += 1
    return out.decode("latin-1")


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def independent_hash(settings):
    """SHA-256 of canonical JSON of the settings with the schema's defaults filled."""
    filled = {name: validate_section(name, copy.deepcopy(value)) for name, value in settings.items()}
    return hashlib.sha256(json.dumps(filled, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def expected_inputs(results, kind, folders):
    datasets = dict.fromkeys(folder.split("/")[0] for folder in folders)
    files = [results / d / "q_bins.json" for d in datasets]
    files += [results / folder / name for folder in folders for name in KIND_FILES[kind]]
    return sorted(str(p) for p in files)


def test_the_planned_pdfs_and_readme_and_nothing_else_are_written(written, defaults):
    for _, outdir, pdfs, _ in cases(written, defaults):
        assert sorted(p.name for p in outdir.iterdir()) == sorted([*pdfs, "README.md"])
        for name in pdfs:
            assert (outdir / name).read_bytes().startswith(b"%PDF")
    assert not list(written[1].parent.glob(".paper*"))  # no temporary folder left


def test_line_figures_are_vector_and_pages_are_column_wide(written, defaults):
    for _, outdir, pdfs, _ in cases(written, defaults):
        for name, (kind, width_pt, _) in pdfs.items():
            data = (outdir / name).read_bytes()
            assert (b"/Subtype /Image" in data) == (kind == "maps"), name  # only the maps hold pixels
            box = re.findall(rb"/MediaBox \[ *([-\d.]+) +([-\d.]+) +([-\d.]+) +([-\d.]+) *\]", data)
            assert len(box) == 1, name
            x0, _, x1, _ = map(float, box[0])
            assert abs((x1 - x0) - width_pt) <= 1.0, (name, x1 - x0, width_pt)


def test_metadata_holds_the_settings_hash_and_the_inputs_with_their_sha256(tree, written, defaults):
    for settings, outdir, pdfs, _ in cases(written, defaults):
        for name, (kind, _, folders) in pdfs.items():
            data = (outdir / name).read_bytes()
            record = json.loads(pdf_string(data, "Subject"))
            assert record["config_sha256"] == independent_hash(settings), name
            assert record["package_version"] == heterodyne.__version__
            assert re.fullmatch(r"[0-9a-f]{40}|unknown", record["git_commit"])
            assert sorted(record["input_sha256"]) == expected_inputs(tree, kind, folders), name
            assert all(sha256(path) == digest for path, digest in record["input_sha256"].items()), name
            assert pdf_string(data, "Title") == Path(name).stem
            assert record["config_sha256"] in pdf_string(data, "Keywords")


def test_every_text_uses_the_one_configured_family_embedded_as_truetype(written, defaults):
    for _, outdir, pdfs, family in cases(written, defaults):
        for name in pdfs:
            data = (outdir / name).read_bytes()
            fonts = set(re.findall(rb"/BaseFont /(?:[A-Z]{6}\+)?([A-Za-z-]+)", data))
            assert fonts and all(f.decode().startswith(family) for f in fonts), (name, fonts)
            assert b"/FontFile2" in data and b"/Type3" not in data, name


def test_readme_lists_every_pdf_with_the_sha256_of_each_input(tree, written, defaults):
    for settings, outdir, pdfs, _ in cases(written, defaults):
        text = (outdir / "README.md").read_text()
        assert independent_hash(settings) in text
        assert json.loads(text.split("```json\n")[1].split("```")[0]) == {
            name: validate_section(name, copy.deepcopy(value)) for name, value in settings.items()
        }
        sections = dict(re.findall(r"^## (\S+)\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M))
        assert set(pdfs) <= set(sections)
        for name, (kind, _, folders) in pdfs.items():
            rows = dict(re.findall(r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", sections[name], flags=re.M))
            assert sorted(rows) == expected_inputs(tree, kind, folders), name
            assert all(sha256(path) == digest for path, digest in rows.items()), name


def test_global_rcparams_are_left_as_they_were(written):
    _, _, before, after = written
    assert after == before


def test_study_points_are_the_nlsq_values_at_the_labels(tree):
    fig = paper_study(plan_bins(tree, "study"), COLUMN_WIDTH_IN["double"])
    assert tuple(fig.get_size_inches())[0] == pytest.approx(COLUMN_WIDTH_IN["double"])
    ax = fig.axes[0]
    name = ax.get_ylabel().split(" [")[0]
    assert name == "D0_ref"
    line = ax.lines[0]  # NLSQ markers of the lowest q (0.01): tiny and tiny2, in label order
    np.testing.assert_array_equal(line.get_xdata(), [LABELS["tiny"], LABELS["tiny2"]])
    values = [nlsq_entry(tree, f"{d}/q0.01", name)[0] for d in ("tiny", "tiny2")]
    assert values[0] != values[1]
    np.testing.assert_array_equal(line.get_ydata(), values)
    plt.close(fig)


def test_cross_q_mean_line_is_the_inverse_variance_mean_of_the_bins(tree):
    fig = paper_cross_q(plan_bins(tree, "cross_q"), COLUMN_WIDTH_IN["single"])
    assert tuple(fig.get_size_inches())[0] == pytest.approx(COLUMN_WIDTH_IN["single"])
    ax = fig.axes[0]
    value, stderr = np.array([nlsq_entry(tree, f"tiny/{q}", ax.get_title()) for q in ("q0.01", "q0.02")]).T
    expected = np.sum(value / stderr**2) / np.sum(1 / stderr**2)
    assert abs(expected - value.mean()) > 1.0  # the weights matter: not the plain mean
    (mean_line,) = [line for line in ax.lines if line.get_label() == "weighted mean ± 1 sd"]
    np.testing.assert_allclose(mean_line.get_ydata(), [expected, expected], rtol=1e-12)
    plt.close(fig)


def test_defaults_of_an_empty_entry(defaults):
    text = (defaults[1] / "README.md").read_text()
    for kind in ("maps", "cuts"):
        assert (
            f"From `paper.{kind} (default)`: dataset tiny, q bin q0.01 (q = 0.01 1/A), "
            f"phi = {ff.PHI[0]:g}, {ff.PHI[1]:g} deg"
        ) in text


def test_rule_inputs_list_every_input_once_from_the_settings_as_written(tree):
    settings = settings_of({"maps": [{"q": "q0.02"}], "cuts": [], "physics": [{"q": 0.0201}]}, tree)
    listed = rule_inputs(settings, tree)
    assert sorted(listed) == sorted(
        set(expected_inputs(tree, "maps", ["tiny/q0.02"]) + expected_inputs(tree, "physics", ["tiny/q0.02"]))
    )
    assert len(listed) == len(set(listed))
    filled = {name: validate_section(name, copy.deepcopy(value)) for name, value in settings.items()}
    assert datasets_used(filled) == ["tiny"]
    filled["paper"].update(cross_q=["tiny2"], study=True)
    assert datasets_used(filled) == ["tiny", "tiny2"]


@pytest.mark.parametrize(
    "paper, expected",
    [
        (
            {"maps": [{"q": 0.05}]},
            "paper.maps[0].q = 0.05 is not a q bin of dataset 'tiny' ({results}/tiny/q_bins.json); available: "
            "q0.01 (q = 0.01 1/A), q0.02 (q = 0.02 1/A)",
        ),
        ({"physics": [{"dataset": "tiny2", "q": "q0.02"}]}, "available: q0.01 (q = 0.01 1/A)"),
        (
            {"cuts": [{"q": 0.02, "phi": [10, 45]}]},
            "paper.cuts[0].phi: 45 deg is not an angle of {results}/tiny/q0.02/dataset.h5 (within 0.5 deg); "
            "available: 10, 70 deg",
        ),
        (
            {"maps": [{"dataset": "nope"}]},
            "paper.maps[0]: dataset 'nope' is not under 'datasets' (configured: tiny, tiny2, tiny3)",
        ),
        (
            {"cross_q": ["tiny3"]},
            "dataset 'tiny3' has no results ({results}/tiny3/q_bins.json not found); "
            "datasets with results in {results}: tiny, tiny2",
        ),
        ({"font_family": "No Such Font"}, "paper.font_family: no installed font 'No Such Font'"),
    ],
)
def test_bad_settings_exit_2_naming_what_is_available_and_leave_no_output(tree, capsys, paper, expected):
    settings = settings_of(paper, tree)
    settings["datasets"]["tiny3"] = {"file": "tiny3.hdf"}
    outdir = tree.parent / "paper_bad"
    assert run_paper(settings, tree, outdir) == 2
    err = capsys.readouterr().err
    assert err.startswith("heterodyne paper: error: ") and err.count("\n") == 1, err
    assert expected.format(results=tree) in err
    assert not outdir.exists() and not list(tree.parent.glob(".paper_bad*"))


def test_a_failure_after_some_figures_leaves_the_previous_folder_as_it_was(tree, capsys):
    outdir = tree.parent / "paper_kept"
    outdir.mkdir()
    (outdir / "old.pdf").write_bytes(b"%PDF old")
    # the default maps and the first cuts figure are drawn before the missing angle is found
    settings = settings_of({"cuts": [{"phi": [10]}, {"phi": [33]}]}, tree)
    assert run_paper(settings, tree, outdir) == 2
    assert "33 deg is not an angle" in capsys.readouterr().err
    assert [p.name for p in outdir.iterdir()] == ["old.pdf"] and not list(tree.parent.glob(".paper_kept*"))


def test_maps_show_the_requested_angles_in_order(written):
    text = (written[1] / "README.md").read_text()
    assert "dataset tiny, q bin q0.01 (q = 0.01 1/A), phi = 70, 10 deg" in text


def test_results_of_different_runs_are_refused(tree, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(tree / "tiny", results / "tiny")
    weights = results / "tiny" / "q0.01" / "weights.json"
    weights.write_text(weights.read_text() + "\n")  # another file than nlsq.json was made from
    outdir = tmp_path / "paper"
    assert run_paper(settings_of({"cuts": [], "physics": []}, results), results, outdir) == 2
    err = capsys.readouterr().err
    assert f"{results}/tiny/q0.01/nlsq.json: made from a different " in err and f"not from {weights}" in err
    assert not outdir.exists()
