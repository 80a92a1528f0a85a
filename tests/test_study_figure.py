"""`heterodyne study-figure`: parameters against the dataset label, from a study table written with
known values (three datasets at two q), checked against those values."""

import json

import numpy as np
import pytest

from heterodyne.cli import main
from heterodyne.lineage import read_provenance
from heterodyne.plots.study import dataset_positions, draw_study, study_series
from heterodyne.report.index_page import study_figure_html
from heterodyne.report.study_tables import PARAMETER_COLUMNS, PARAMETERS_NOTE, read_table, render_table

LABELS = {"gel_25C": 25.0, "gel_40C": 40.0, "gel_60C": 60.0}
QS = (0.005, 0.01)


def truth(dataset, q, name):
    """The value written for (dataset, q, parameter): distinct for every cell."""
    return {"D0_sample": 1000.0, "v0": 50.0}[name] * (1 + LABELS[dataset] / 100) * (1 + q)


def table_rows():
    rows = []
    for dataset in LABELS:
        for q in QS:
            for name in ("D0_sample", "v0"):
                value = truth(dataset, q, name)
                rows.append(
                    {
                        "dataset": dataset,
                        "q": q,
                        "method": "nlsq",
                        "parameter": name,
                        "value": value,
                        "stderr_or_sd": 0.05 * value,
                        "unit": "u",
                    }
                )
                rows.append(
                    {
                        "dataset": dataset,
                        "q": q,
                        "method": "cmc",
                        "parameter": name,
                        "value": value,
                        "stderr_or_sd": 0.05 * value,
                        "q05": 0.9 * value,
                        "q50": 1.01 * value,
                        "q95": 1.1 * value,
                        "unit": "u",
                    }
                )
            rows.append(
                {
                    "dataset": dataset,
                    "q": q,
                    "method": "nlsq",
                    "parameter": "contrast_0",
                    "phi": 0.0,
                    "value": 0.2,
                    "stderr_or_sd": 0.01,
                    "unit": "1",
                }
            )
    return rows


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "parameters.csv"
    path.write_text(render_table(PARAMETER_COLUMNS, table_rows(), PARAMETERS_NOTE, {"test": "study"}))
    return path


def settings(labels):
    return json.dumps(
        {
            "datasets": {
                name: {"file": f"{name}.hdf", **({"label": labels[name]} if name in labels else {})} for name in LABELS
            }
        }
    )


def test_series_hold_the_table_values_at_the_labels(table):
    rows = read_table(table, PARAMETER_COLUMNS)
    positions, title, ticks = dataset_positions({r["dataset"] for r in rows}, LABELS)
    assert title == "dataset label" and ticks is None
    series = study_series(rows, positions)
    assert list(series) == ["D0_sample", "v0"]  # contrast_0 is per angle, not physics
    for name, by_q in series.items():
        assert sorted(by_q) == list(QS)
        for q, s in by_q.items():
            order = sorted(LABELS, key=LABELS.get)
            expected = np.array([truth(d, q, name) for d in order])
            np.testing.assert_allclose(s["x"], [LABELS[d] for d in order])
            np.testing.assert_allclose(s["nlsq"], expected, rtol=1e-15)
            np.testing.assert_allclose(s["nlsq_se"], 0.05 * expected, rtol=1e-15)
            np.testing.assert_allclose(
                [s["cmc_q05"], s["cmc_q50"], s["cmc_q95"]],
                [0.9 * expected, 1.01 * expected, 1.1 * expected],
                rtol=1e-15,
            )
    # the drawn NLSQ markers sit at (label, value)
    fig = draw_study(series, {"D0_sample": "u", "v0": "u"}, title, ticks)
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), [25.0, 40.0, 60.0])
    np.testing.assert_allclose(
        line.get_ydata(), [truth(d, QS[0], "D0_sample") for d in ("gel_25C", "gel_40C", "gel_60C")]
    )


def test_without_a_label_on_every_dataset_the_names_are_the_axis():
    positions, title, ticks = dataset_positions({"b", "a", "c"}, {"a": 1.0, "b": None})
    assert positions == {"a": 0.0, "b": 1.0, "c": 2.0} and ticks == ["a", "b", "c"] and title == "dataset"


def test_cli_writes_the_figure_with_provenance(table, tmp_path):
    outdir = tmp_path / "study"
    assert (
        main(["study-figure", "--settings", settings(LABELS), "--parameters", str(table), "--outdir", str(outdir)]) == 0
    )
    assert sorted(p.name for p in outdir.iterdir()) == [
        "parameters_vs_dataset.pdf",
        "parameters_vs_dataset.png",
        "parameters_vs_dataset.rst",
    ]
    record = read_provenance(outdir / "parameters_vs_dataset.png")
    assert list(record["input_sha256"]) == [str(table)]
    assert "3 datasets against the datasets' config labels" in (outdir / "parameters_vs_dataset.rst").read_text()
    # the index page shows it from the results folder (relative link); nothing without it
    assert '<img src="study/parameters_vs_dataset.png"' in study_figure_html(tmp_path)
    assert study_figure_html(tmp_path / "elsewhere") == ""


def test_dataset_missing_from_the_config_exits_2_without_output(table, tmp_path, capsys):
    outdir = tmp_path / "study"
    only_two = json.dumps({"datasets": {"gel_25C": {"file": "a.hdf"}, "gel_40C": {"file": "b.hdf"}}})
    assert main(["study-figure", "--settings", only_two, "--parameters", str(table), "--outdir", str(outdir)]) == 2
    assert "['gel_60C'] are not in the config's 'datasets'" in capsys.readouterr().err
    assert not outdir.exists()
