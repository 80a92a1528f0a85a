"""Study figure: each free physics parameter against the dataset, from results/parameters.csv.

One panel per physics parameter that some NLSQ fit of the study left free (the per-angle contrast
and offset are left out). x: the datasets' numeric ``label`` from the config (a temperature, a shear
rate, ...) when every dataset has one, else the datasets in name order (tick labels = names).
Per q bin one series: NLSQ value +/- 1 standard error (filled marker) and, offset by a small
fraction of the x range, the CMC median with its 5-95 % interval (open marker). Units as in the
table's ``unit`` column.

:func:`paper_study` draws the same figure for ``heterodyne paper`` from the q bins' nlsq.json and
cmc/summary.json (the rows of :func:`heterodyne.report.study_tables.parameter_rows`).
"""

import math

import numpy as np

from heterodyne.cmc.summary_file import read_summary
from heterodyne.core.parameters import PARAMETER_NAMES
from heterodyne.fit.results import read_nlsq
from heterodyne.plots.paper_style import panel_columns, panel_letters
from heterodyne.plots.style import (
    CMC_COLOR,
    NLSQ_COLOR,
    active_rc,
    new_figure,
    render_caption,
    save_figure,
    scaled_to_width,
)
from heterodyne.report.study_tables import parameter_rows

STEM = "parameters_vs_dataset"
PANEL_SIZE = (2.8, 2.2)
N_COLUMNS = 3
#: CMC points are drawn this fraction of the x range to the right of the NLSQ points
CMC_SHIFT = 0.02
Q_MARKERS = "osD^v<>ph*"


def _number(cell):
    return float(cell) if cell not in ("", None) else math.nan


def dataset_positions(datasets, labels):
    """({dataset: x}, x-axis title, tick labels or None): the labels when every dataset has one,
    else 0, 1, ... in name order with the names as ticks."""
    names = sorted(datasets)
    if all(labels.get(name) is not None for name in names):
        return {name: float(labels[name]) for name in names}, "dataset label", None
    return {name: float(i) for i, name in enumerate(names)}, "dataset", names


def study_series(rows, positions):
    """{parameter: {q: {"x", "nlsq", "nlsq_se", "cmc_q50", "cmc_q05", "cmc_q95"}}} (arrays over the
    datasets in x order, NaN where a method has no row) of the free physics parameters in
    parameters.csv ``rows`` (dicts of str as read, or of numbers/None as
    :func:`~heterodyne.report.study_tables.parameter_rows` makes them)."""
    physics = [r for r in rows if r["parameter"] in PARAMETER_NAMES]
    free = [name for name in PARAMETER_NAMES if any(r["parameter"] == name and r["method"] == "nlsq" for r in physics)]
    order = sorted(positions, key=positions.get)
    series = {}
    for name in free:
        mine = [r for r in physics if r["parameter"] == name]
        for q in sorted({float(r["q"]) for r in mine}):
            cells = {(r["dataset"], r["method"]): r for r in mine if float(r["q"]) == q}

            def column(method, key, cells=cells):
                return np.array([_number(cells[(d, method)][key]) if (d, method) in cells else math.nan for d in order])

            series.setdefault(name, {})[q] = {
                "x": np.array([positions[d] for d in order]),
                "nlsq": column("nlsq", "value"),
                "nlsq_se": column("nlsq", "stderr_or_sd"),
                "cmc_q50": column("cmc", "q50"),
                "cmc_q05": column("cmc", "q05"),
                "cmc_q95": column("cmc", "q95"),
            }
    return series


def draw_study(series, units, x_title, ticks, rc=None, ncols=N_COLUMNS):
    """Figure of :func:`study_series` output in ``ncols`` columns of panels; ``units``
    {parameter: unit}; ``rc`` rcParams over the shared style."""
    names = list(series)
    nrows = max(1, math.ceil(len(names) / ncols))
    fig, axes = new_figure(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows, nrows=nrows, ncols=ncols, rc=rc)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.set_axis_off()
            continue
        name = names[k]
        for j, (q, s) in enumerate(series[name].items()):
            span = np.ptp(s["x"]) or 1.0
            marker = Q_MARKERS[j % len(Q_MARKERS)]
            ax.errorbar(
                s["x"],
                s["nlsq"],
                yerr=s["nlsq_se"],
                fmt=marker,
                color=NLSQ_COLOR,
                ms=4,
                capsize=2,
                label=f"NLSQ q = {q:.4g}",
            )
            ax.errorbar(
                s["x"] + CMC_SHIFT * span,
                s["cmc_q50"],
                yerr=[s["cmc_q50"] - s["cmc_q05"], s["cmc_q95"] - s["cmc_q50"]],
                fmt=marker,
                mfc="none",
                color=CMC_COLOR,
                ms=4,
                capsize=2,
                label=f"CMC q = {q:.4g}",
            )
        ax.set_ylabel(f"{name} [{units.get(name, '')}]")
        ax.set_xlabel(x_title)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30, ha="right")
    if names:
        axes.flat[0].legend(frameon=False)
    return fig


def study_figure(rows, labels, rc=None, ncols=N_COLUMNS):
    """(Figure, series, dataset positions, tick labels or None) of parameters.csv ``rows`` with
    the datasets' ``labels`` {dataset: number or None}; ``rc``, ``ncols`` as in :func:`draw_study`."""
    positions, x_title, ticks = dataset_positions({r["dataset"] for r in rows}, labels)
    series = study_series(rows, positions)
    units = {r["parameter"]: r["unit"] for r in rows}
    return draw_study(series, units, x_title, ticks, rc, ncols), series, positions, ticks


def write_study_figure(outdir, rows, labels, provenance):
    """Draw and save the study figure (PNG, PDF, caption) into ``outdir``; returns the PNG path."""
    fig, series, positions, ticks = study_figure(rows, labels)
    caption = render_caption(
        "study",
        n_datasets=len(positions),
        x_axis=(
            "the datasets' config labels"
            if ticks is None
            else "the datasets in name order (not every dataset has a numeric label in the config)"
        ),
        parameters=", ".join(series) or "none",
    )
    return save_figure(fig, outdir, STEM, caption, provenance)


def bin_rows(qres):
    """parameters.csv rows of one :class:`~heterodyne.plots.paper_plan.QResults` (its q [1/A],
    angles [deg] from nlsq.json), read from its ``files`` nlsq_json and cmc_json."""
    nlsq, cmc = read_nlsq(qres.files["nlsq_json"]).record, read_summary(qres.files["cmc_json"]).record
    return parameter_rows({"name": qres.dataset, "q": qres.q, "phi": nlsq["phi"], "nlsq": nlsq, "cmc": cmc})


def paper_study(figure_inputs, width_in):
    """Study figure of ``heterodyne paper``: the q bins ``figure_inputs`` (QResults of every
    dataset, each with its ``label``) drawn in the current rcParams, ``width_in`` inches wide
    (:func:`~heterodyne.plots.paper_style.panel_columns` columns, height scaled with the width);
    panel letters, no title."""
    rows = [row for qres in figure_inputs for row in bin_rows(qres)]
    labels = {qres.dataset: qres.label for qres in figure_inputs}
    fig, _, _, _ = study_figure(rows, labels, active_rc(), panel_columns(width_in, N_COLUMNS))
    panel_letters([ax for ax in fig.axes if ax.axison])
    return scaled_to_width(fig, width_in)
