"""Cross-q figures of one dataset, drawn from its cross_q.json record
(:mod:`heterodyne.study.cross_q_record`).

``cross_q_parameters``: one panel per parameter free in at least one q bin's fit, against q
[1/A]: the NLSQ value +/- 1 se (left of q) and the CMC posterior median with its 5-95 % interval
(right of q; the two are offset by +/- :data:`DODGE` of q so they do not overlap); a value held
fixed in a bin's fit is an open marker without error bar. Tested parameters show their
inverse-variance weighted mean over the bins (line; the mean their own chi2 test compares with)
with its +/- 1 sd band and their p-value and Holm-adjusted p-value;
the fractions f0..f3 are marked as allowed to vary with q; the joint multi-q fit, if given, is a
dashed line.

``cross_q_rates``: the decay rates q^2 J_ref(t_ref), q^2 J_sample(t_ref) and the phase rate
|q v(t_ref)| [1/s] of each bin against q on log-log axes, with NLSQ error bars (propagated from the
covariance), and reference lines of slope 2 (decay) and 1 (phase) through the mean rate over the
bins, q^2 J_mean resp. q |v_mean|: q-independent parameters put every point on them. Only positive
values are drawn (a rate clipped to 0 is left out and said so; the phase rate is drawn as |q v|).

:func:`paper_cross_q` draws ``cross_q_parameters`` for ``heterodyne paper``, building the record
from the q bins' folders (dataset.h5, nlsq.json, cmc/summary.json) at the default alpha.
"""

import math

import numpy as np

from heterodyne.core.parameters import FRACTION_NAMES
from heterodyne.plots.paper_style import panel_columns, panel_letters
from heterodyne.plots.style import CMC_COLOR, NLSQ_COLOR, active_rc, new_figure, render_caption, save_figure
from heterodyne.study.cross_q import Q_INDEPENDENT
from heterodyne.study.cross_q_record import build_record, read_bins

#: relative offset in q of the NLSQ (-) and CMC (+) estimates of one bin
DODGE = 0.012
PANEL_SIZE = (2.7, 2.3)
N_COLUMNS = 4
MEAN_COLOR = "#444444"
JOINT_COLOR = "#8e44ad"
RATE_COLORS = {"decay_ref": "#2e8b57", "decay_sample": NLSQ_COLOR, "phase": CMC_COLOR}
RATE_LABELS = {"decay_ref": "q^2 J_ref(t_ref)", "decay_sample": "q^2 J_sample(t_ref)", "phase": "|q v(t_ref)|"}
#: reference lines extend this factor beyond the smallest and largest q
LINE_MARGIN = 1.15
#: characters of a panel note's line per inch of panel width (7 pt text)
NOTE_CHARS_PER_IN = 12
#: width [in] of one legend entry (marker and label) below the parameter panels
LEGEND_ENTRY_IN = 1.4


def shown_parameters(record):
    """Parameters free in at least one bin's fit: the q-independent ones, then the fractions."""
    estimates = record["estimates"]
    return [name for name in (*Q_INDEPENDENT, *FRACTION_NAMES) if any(not e["fixed"] for e in estimates[name]["nlsq"])]


def _panel_note(record, name):
    """(text, colour) of a panel: p-values, the fraction note or why the parameter is not tested."""
    test = record["test"]
    if name in FRACTION_NAMES:
        return "fraction: may vary with q\n(not tested)", MEAN_COLOR
    if test is not None and name in test["parameters"]:
        entry = test["parameters"][name]
        text = f"p {p_is(entry['p'])}, Holm p {p_is(entry['p_holm'])}"
        return (text + "\nq-dependent", NLSQ_COLOR) if entry["significant"] else (text, MEAN_COLOR)
    reasons = [e["reason"] for e in record["left_out"] if e["name"] == name]
    reason = reasons[0] if reasons else (record["reason"] or "not tested")
    return "not tested: " + reason, MEAN_COLOR


def _wrap(text, width):
    """``text`` with each of its lines broken at spaces to at most ``width`` characters."""
    out = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            if line and len(line) + 1 + len(word) > width:
                out.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        out.append(line)
    return "\n".join(out)


def p_is(p):
    """ "= 0.123" for a p-value, "< 1e-300" for one that underflowed to 0 in float64."""
    return "< 1e-300" if p == 0 else f"= {p:.3g}"


def _parameter_panel(ax, record, name, note_chars):
    q = np.asarray(record["q"], dtype=np.float64)
    entry = record["estimates"][name]
    for k, (qk, est) in enumerate(zip(q, entry["nlsq"], strict=True)):
        if est["value"] is None:
            continue
        label = "NLSQ ± 1 se" if k == 0 else None
        if est["fixed"]:
            ax.plot(
                [qk * (1 - DODGE)],
                [est["value"]],
                "o",
                mfc="none",
                color=NLSQ_COLOR,
                ms=4,
                label="fixed in the fit" if k == 0 else None,
            )
        else:
            ax.errorbar(
                [qk * (1 - DODGE)],
                [est["value"]],
                yerr=[est["stderr"] or 0.0],
                fmt="o",
                color=NLSQ_COLOR,
                capsize=3,
                ms=4,
                label=label,
            )
    cmc_points = [
        (qk, c)
        for qk, c in zip(q, entry["cmc"], strict=True)
        if c is not None and None not in (c["q05"], c["q50"], c["q95"])
    ]
    for k, (qk, c) in enumerate(cmc_points):
        ax.errorbar(
            [qk * (1 + DODGE)],
            [c["q50"]],
            yerr=[[c["q50"] - c["q05"]], [c["q95"] - c["q50"]]],
            fmt="s",
            color=CMC_COLOR,
            capsize=3,
            ms=4,
            label="CMC median, 5-95 %" if k == 0 else None,
        )
    test = record["test"]
    if test is not None and name in test["parameters"]:
        # the mean the panel's p-value tests against: this parameter's inverse-variance mean
        mean, se = test["parameters"][name]["marginal_mean"], test["parameters"][name]["marginal_se"]
        ax.axhline(mean, color=MEAN_COLOR, lw=1.0, label="weighted mean ± 1 sd")
        ax.axhspan(mean - se, mean + se, color=MEAN_COLOR, alpha=0.15, lw=0)
    joint = record["joint_fit"]
    if joint is not None and joint["parameters"][name]["value"] is not None:
        ax.axhline(joint["parameters"][name]["value"], color=JOINT_COLOR, lw=1.0, ls="--", label="joint multi-q fit")
    posterior = joint["cmc"]["parameters"].get(name) if joint is not None and joint["cmc"] is not None else None
    if posterior is not None:
        ax.axhspan(
            posterior["q05"], posterior["q95"], color=JOINT_COLOR, alpha=0.12, lw=0, label="joint posterior 5-95 %"
        )
    text, color = _panel_note(record, name)
    ax.text(0.03, 0.97, _wrap(text, note_chars), transform=ax.transAxes, ha="left", va="top", fontsize=7, color=color)
    ax.set_title(name)
    ax.set_ylabel(entry["unit"])
    ax.set_xlabel("q (1/A)")
    span = (q.min() / LINE_MARGIN, q.max() * LINE_MARGIN)
    ax.set_xlim(*span)
    ax.set_xticks(q, [f"{x:.4g}" for x in q])
    ax.margins(y=0.35)


def draw_parameters(record, rc=None, ncols=N_COLUMNS, width_in=None):
    """Figure of every :func:`shown_parameters` panel against q, in at most ``ncols`` columns,
    ``width_in`` inches wide (None: PANEL_SIZE[0] per column; panels keep PANEL_SIZE's aspect
    ratio); ``rc`` rcParams over the shared style."""
    names = shown_parameters(record)
    ncols = max(1, min(ncols, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    panel_in = PANEL_SIZE[0] if width_in is None else width_in / ncols
    fig, axes = new_figure(
        panel_in * ncols, panel_in * PANEL_SIZE[1] / PANEL_SIZE[0] * nrows + 0.3, nrows=nrows, ncols=ncols, rc=rc
    )
    for ax in axes.flat[len(names) :]:
        ax.set_axis_off()
    for ax, name in zip(axes.flat, names, strict=False):
        _parameter_panel(ax, record, name, round(NOTE_CHARS_PER_IN * panel_in))
    if names:
        handles, labels = [], []
        for ax in axes.flat[: len(names)]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        fig.legend(
            handles,
            labels,
            loc="outside lower center",
            ncols=legend_columns(panel_in * ncols, len(labels)),
            frameon=False,
        )
    else:
        axes[0, 0].text(0.5, 0.5, "no free parameter", ha="center", va="center")
    return fig


def legend_columns(width_in, n_entries):
    """Columns (1 to 5) of a legend of ``n_entries`` entries across ``width_in`` inches."""
    return max(1, min(5, n_entries, int(width_in // LEGEND_ENTRY_IN)))


def paper_cross_q(figure_inputs, width_in):
    """Cross-q parameter figure of ``heterodyne paper``: the q bins ``figure_inputs`` (QResults of
    one dataset; their folders are those of ``files["nlsq_json"]``) drawn in the current rcParams,
    ``width_in`` inches wide in :func:`~heterodyne.plots.paper_style.panel_columns` columns, with
    panel letters."""
    bins = read_bins([qres.files["nlsq_json"].parent for qres in figure_inputs])
    fig = draw_parameters(build_record(bins), active_rc(), panel_columns(width_in, N_COLUMNS), width_in)
    panel_letters([ax for ax in fig.axes if ax.axison])
    return fig


def _positive(q, values, stderr):
    """(q, values, se) where the value is positive and finite (log axes)."""
    kept = [
        (qk, v, 0.0 if s is None else s)
        for qk, v, s in zip(q, values, stderr, strict=True)
        if v is not None and np.isfinite(v) and v > 0
    ]
    if not kept:
        return np.array([]), np.array([]), np.array([])
    return (np.array(x, dtype=np.float64) for x in zip(*kept, strict=True))


def draw_rates(record):
    """(figure, lines): decay and phase rates against q, log-log; ``lines`` maps each rate drawn
    to the data of its reference line as drawn ({q, y, slope, mean}: y = q^slope |mean|) and of
    its joint-fit line where there is one (``joint``)."""
    rates = record["rates"]
    q = np.asarray(record["q"], dtype=np.float64)
    grid = np.geomspace(q.min() / LINE_MARGIN, q.max() * LINE_MARGIN, 50)
    fig, axes = new_figure(8.0, 3.6, nrows=1, ncols=2)
    lines, notes = {}, {0: [], 1: []}
    for col, group in ((0, ("decay_ref", "decay_sample")), (1, ("phase",))):
        ax = axes[0, col]
        for rate in group:
            block = rates[rate]
            values = [None if v is None else abs(v) for v in block["values"]]
            qs, ys, ses = _positive(q, values, block["stderr"])
            if len(qs) < len(q):
                notes[col].append(f"{RATE_LABELS[rate]} = 0 at {len(q) - len(qs)} q bin(s): not drawn")
            if not len(qs):
                continue
            color = RATE_COLORS[rate]
            ax.errorbar(qs, ys, yerr=ses, fmt="o", color=color, capsize=3, ms=4, label=RATE_LABELS[rate])
            mean = abs(block["mean"])
            slope = block["q_power"]
            if mean > 0:
                (line,) = ax.plot(
                    grid,
                    grid**slope * mean,
                    color=color,
                    lw=1.0,
                    alpha=0.8,
                    label=f"slope {slope} through the mean",
                    gid=f"reference_{rate}",
                )
                lines[rate] = {"q": line.get_xdata(), "y": line.get_ydata(), "slope": slope, "mean": mean}
            joint = record["joint_fit"]
            if joint is not None and joint["rates"][rate]["rate"]:
                value = abs(joint["rates"][rate]["rate"])
                (jl,) = ax.plot(
                    grid,
                    grid**slope * value,
                    color=color,
                    lw=1.0,
                    ls="--",
                    label=f"joint fit ({RATE_LABELS[rate]})",
                    gid=f"joint_{rate}",
                )
                lines.setdefault(rate, {})["joint"] = {"q": jl.get_xdata(), "y": jl.get_ydata()}
        ax.set_xscale("log")
        if ax.has_data():
            ax.set_yscale("log")
            ax.legend(frameon=False, fontsize=7)
        else:
            ax.text(0.5, 0.5, "no positive rate to draw", ha="center", va="center", transform=ax.transAxes)
        if notes[col]:
            ax.text(0.02, 0.02, "\n".join(notes[col]), transform=ax.transAxes, fontsize=7, va="bottom")
        ax.set_xlabel("q (1/A)")
        ax.set_ylabel("decay rate (1/s)" if col == 0 else "phase rate |q v| (rad/s)")
        ax.set_title(f"t_ref = {rates['t_ref']:.4g} s")
    return fig, lines


def verdict_text(record):
    """One sentence: the cross-q verdict of the record."""
    if record["test"] is None:
        return f"No cross-q test: {record['reason']}."
    joint = record["test"]["joint"]
    if record["q_dependent"]:
        names = ", ".join(record["significant"]) or "the parameters jointly"
        return (
            f"Significant q-dependence of {names} (Holm-adjusted, alpha = {record['alpha']:g}; joint "
            f"chi2 = {joint['chi2']:.4g} on {joint['dof']} dof, p {p_is(joint['p'])}): evidence against "
            "the model over this q range."
        )
    return (
        f"No significant q-dependence (alpha = {record['alpha']:g}; joint chi2 = {joint['chi2']:.4g} on "
        f"{joint['dof']} dof, p {p_is(joint['p'])})."
    )


def _joint_caption(joint, band=True):
    """The caption's sentence on the joint multi-q fit and, with ``band``, its posterior ("" without
    a joint fit)."""
    if joint is None:
        return ""
    text = " The dashed line is the joint multi-q fit (same data, not part of the test)"
    if joint["cmc"] is None or not band:
        return text + "."
    flagged = " (flagged: see the dataset's joint_q/cmc/summary.json)" if joint["cmc"]["flagged"] else ""
    return text + f"; the shaded band is its posterior's 5-95 % interval{flagged}."


def write_cross_q_figures(outdir, record, provenance):
    """Both figures into ``outdir``; returns ({stem: PNG path}, the reference line data of
    :func:`draw_rates`)."""
    fields = {
        "dataset": record["dataset"],
        "n_q": len(record["q"]),
        "verdict": verdict_text(record),
        "joint": _joint_caption(record["joint_fit"]),
    }
    paths = {}
    fig = draw_parameters(record)
    paths["cross_q_parameters"] = save_figure(
        fig, outdir, "cross_q_parameters", render_caption("cross_q_parameters", **fields), provenance
    )
    fig, lines = draw_rates(record)
    rates = record["rates"]
    caption = render_caption(
        "cross_q_rates",
        **{**fields, "joint": _joint_caption(record["joint_fit"], band=False)},
        t_ref=f"{rates['t_ref']:.4g}",
        t_ref_rule=rates["t_ref_rule"],
    )
    paths["cross_q_rates"] = save_figure(fig, outdir, "cross_q_rates", caption, provenance)
    return paths, lines
