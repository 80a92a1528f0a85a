"""`heterodyne tables` (results/parameters.csv, results/fit_quality.csv) on the saved result set of
figures_fixtures, copied twice as two datasets of one study.

Checks: one row per (dataset, q, method, parameter), counted against nlsq.json (free parameters and
per-angle contrast/offset) and cmc/summary.json; every value equal to its source record; one
fit-quality row per (dataset, q, phi) equal to nlsq.json and weights.json; both files parse with
csv (comment lines skipped, as pandas.read_csv(comment="#") does), and carry a provenance record
that `heterodyne audit` checks;
the index page links them; a missing input is named.
"""

import csv
import json
import shutil

import figures_fixtures as ff
import pytest

from heterodyne.audit import audit_file
from heterodyne.cli import main
from heterodyne.core.parameters import PARAMETERS
from heterodyne.lineage import read_provenance
from heterodyne.report.index_page import tables_html
from heterodyne.report.study_tables import FIT_QUALITY_COLUMNS, PARAMETER_COLUMNS
from heterodyne.weighting.weights_file import load_weights

DATASETS = (ff.NAME, "tiny_copy")
QFOLDER = "q0.01"  # the q bin folder of each dataset (results/<dataset>/<q folder>/)


def read_table(path):
    """(columns, rows as dicts of str) of a study table, its comment lines skipped."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    reader = csv.DictReader(lines)
    return tuple(reader.fieldnames), list(reader)


def number(cell):
    """float of a cell, None when empty."""
    return None if cell == "" else float(cell)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A results folder with two datasets (the saved set and a copy) and both tables written."""
    saved = ff.build_saved_results(tmp_path_factory.getbasetemp() / "saved_results")
    root = tmp_path_factory.mktemp("study") / "results"
    for name in DATASETS:
        shutil.copytree(saved["results"], root / name / QFOLDER)
    paths = {"parameters": root / "parameters.csv", "fit_quality": root / "fit_quality.csv"}
    status = main(
        [
            "tables",
            "--folders",
            *(str(root / name / QFOLDER) for name in DATASETS),
            "--parameters",
            str(paths["parameters"]),
            "--fit-quality",
            str(paths["fit_quality"]),
        ]
    )
    assert status == 0
    tables = {key: read_table(path) for key, path in paths.items()}
    return {"saved": saved, "root": root, "paths": paths, **tables}


def test_one_parameter_row_per_dataset_q_method_and_parameter(study):
    columns, rows = study["parameters"]
    saved = study["saved"]
    assert columns == PARAMETER_COLUMNS
    free = [p.name for p in PARAMETERS if p.name not in ff.FIXED]
    per_angle = [f"{kind}_{a}" for kind in ("contrast", "offset") for a in range(len(ff.PHI))]
    cmc = list(saved["summary"]["parameters"])
    assert len(rows) == len(DATASETS) * (len(free) + len(per_angle) + len(cmc))
    keys = [(r["dataset"], r["q"], r["method"], r["parameter"]) for r in rows]
    assert len(set(keys)) == len(keys)
    for name in DATASETS:
        mine = [r for r in rows if r["dataset"] == name]
        assert sorted(r["parameter"] for r in mine if r["method"] == "nlsq") == sorted(free + per_angle)
        assert sorted(r["parameter"] for r in mine if r["method"] == "cmc") == sorted(cmc)
    assert {number(r["q"]) for r in rows} == {ff.Q}


def test_parameter_values_equal_the_source_records(study):
    nlsq, summary = study["saved"]["nlsq"], study["saved"]["summary"]
    rows = {(r["method"], r["parameter"]): r for r in study["parameters"][1] if r["dataset"] == ff.NAME}
    flag = {True: "true", False: "false"}
    for name, entry in nlsq["parameters"].items():
        if entry["fixed"]:
            continue
        row = rows[("nlsq", name)]
        assert number(row["value"]) == entry["value"] and number(row["stderr_or_sd"]) == entry["stderr"]
        assert row["unit"] == entry["unit"]
        assert row["converged"] == flag[nlsq["converged"]] and row["at_bound"] == flag[entry["at_bound"]]
        assert row["q05"] == row["q50"] == row["q95"] == row["flagged"] == row["phi"] == ""
    for a, phi in enumerate(ff.PHI):
        for kind in ("contrast", "offset"):
            row = rows[("nlsq", f"{kind}_{a}")]
            assert (number(row["value"]), number(row["stderr_or_sd"]), number(row["phi"])) == (
                nlsq[kind][a],
                nlsq[f"{kind}_stderr"][a],
                phi,
            )
    for name, entry in summary["parameters"].items():
        row = rows[("cmc", name)]
        assert tuple(number(row[c]) for c in ("value", "stderr_or_sd", "q05", "q50", "q95")) == (
            entry["mean"],
            entry["sd"],
            entry["q05"],
            entry["q50"],
            entry["q95"],
        )
        assert row["flagged"] == flag[summary["combined"]["flagged"]] and row["converged"] == ""
    assert number(rows[("cmc", "contrast_1")]["phi"]) == ff.PHI[1] and rows[("cmc", "v0")]["phi"] == ""
    assert rows[("nlsq", "D0_ref")]["unit"] == "A^2 s^-(1+alpha_ref)"
    assert rows[("cmc", "offset_0")]["unit"] == "1"


def test_fit_quality_rows_per_angle_equal_nlsq_and_weights(study):
    columns, rows = study["fit_quality"]
    nlsq = study["saved"]["nlsq"]
    weights = load_weights(study["saved"]["results"] / "weights.json")
    assert columns == FIT_QUALITY_COLUMNS
    assert len(rows) == len(DATASETS) * len(ff.PHI)
    for name in DATASETS:
        mine = [r for r in rows if r["dataset"] == name]
        column = {c: [r[c] for r in mine] for c in columns}
        assert [number(v) for v in column["phi"]] == list(ff.PHI) and {number(v) for v in column["q"]} == {ff.Q}
        for key, source in (
            ("reduced_chi2", "reduced_chi2_per_angle"),
            ("contrast", "contrast"),
            ("offset", "offset"),
            ("contrast_stderr", "contrast_stderr"),
            ("offset_stderr", "offset_stderr"),
        ):
            assert [number(v) for v in column[key]] == nlsq[source], key
        assert [number(v) for v in column["sigma"]] == list(weights.sigma)
        assert column["noise_model"] == [noise.model for noise in weights.noise]
        assert column["noise_model"][ff.SPECKLE_ANGLE] == "speckle"
        assert number(column["kappa"][ff.SPECKLE_ANGLE]) == weights.noise[ff.SPECKLE_ANGLE].kappa
        assert column["kappa"][1 - ff.SPECKLE_ANGLE] == ""


def test_tables_parse_with_csv_and_carry_a_provenance_record_the_audit_checks(study):
    root = study["root"]
    for key, path in study["paths"].items():
        text = path.read_text()
        comments = [line for line in text.splitlines() if line.startswith("#")]
        assert text.startswith("# heterodyne study table") and len(comments) == 2
        lines = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
        assert len(lines) == 1 + len(study[key][1]) and {len(line) for line in lines} == {len(study[key][0])}
        record = read_provenance(path)
        expected = {
            str(root / name / QFOLDER / f)
            for name in DATASETS
            for f in ("dataset.h5", "weights.json", "nlsq.json", "cmc/summary.json")
        }
        assert set(record["input_sha256"]) == expected

    # the audit of the tables; the fixture wrote every file from one command line (pytest's), the
    # workflow writes each kind with its own command: records say so, as the workflow's would
    def audits():
        records = {p.resolve(): read_provenance(p) for p in root.rglob("*") if p.is_file()}
        for path, record in records.items():
            if record is not None:
                record["command_line"] = ["heterodyne", path.name]
        return {name: audit_file(root / name, root, records) for name in ("parameters.csv", "fit_quality.csv")}

    for result in audits().values():
        assert result.passed and result.n_inputs == 4 * len(DATASETS), result
    # a changed input fails the tables' audit
    weights = root / "tiny_copy" / QFOLDER / "weights.json"
    record = json.loads(weights.read_text())
    record["sigma"] = [2 * s for s in record["sigma"]]
    weights.write_text(json.dumps(record))
    try:
        for result in audits().values():
            assert not result.passed
            assert any(f"tiny_copy/{QFOLDER}/weights.json has changed" in p for p in result.problems), result
    finally:
        shutil.copy(study["saved"]["results"] / "weights.json", weights)


def test_index_page_links_the_tables(study, tmp_path):
    html = tables_html(study["root"])
    assert 'href="parameters.csv"' in html and 'href="fit_quality.csv"' in html
    assert tables_html(tmp_path) == ""


def test_missing_summary_is_named(study, tmp_path, capsys):
    root = tmp_path / "results"
    shutil.copytree(study["saved"]["results"], root / "solo" / QFOLDER)
    (root / "solo" / QFOLDER / "cmc" / "summary.json").unlink()
    status = main(
        [
            "tables",
            "--folders",
            str(root / "solo" / QFOLDER),
            "--parameters",
            str(root / "p.csv"),
            "--fit-quality",
            str(root / "f.csv"),
        ]
    )
    assert status == 2
    assert f"solo/{QFOLDER}/cmc/summary.json: cmc/summary.json not found" in capsys.readouterr().err
    assert not (root / "p.csv").exists() and not (root / "f.csv").exists()
