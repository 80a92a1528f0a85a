"""The cross-q verdict of a dataset in the HTML pages, from its results/<dataset>/cross_q.json
(``heterodyne cross-q``) and the figures in results/<dataset>/cross_q/.

The verdict is a flag the reader cannot miss: "significant q-dependence of X: evidence against the
model over this q range" when ``q_dependent`` is true (a parameter significant after Holm's
correction, or the joint test rejecting); the table lists per parameter the precision-weighted mean
+/- se, chi2, dof, p and the Holm-adjusted p, then the joint test; with a joint multi-q fit a
second table sets its values beside the joint posterior's, with the posterior's flags.
"""

from pathlib import Path

from heterodyne.plots.cross_q import p_is
from heterodyne.report.markup import esc, fmt, png_figure, table
from heterodyne.report.screen_png import screen_png

#: cross_q.json and the figures folder, relative to results/<dataset>/
CROSS_Q_JSON = "cross_q.json"
CROSS_Q_FIGURES = "cross_q"
#: the joint multi-q fit's and joint posterior's records, relative to results/<dataset>/
JOINT_Q_NLSQ = "joint_q/nlsq.json"
JOINT_Q_POSTERIOR = "joint_q/cmc/summary.json"


def flag_text(record):
    """(css class, one-sentence verdict) of a cross_q.json record."""
    q = ", ".join(fmt(x, 4) for x in record["q"])
    if record["test"] is None:
        return "ok", f"No cross-q test (q = {q} 1/A): {record['reason']}."
    joint = record["test"]["joint"]
    joint_text = f"joint chi2 = {fmt(joint['chi2'], 4)} on {joint['dof']} dof, p {p_is(joint['p'])}"
    if record["q_dependent"]:
        names = ", ".join(record["significant"]) or "the tested parameters jointly"
        adjusted = "; ".join(
            f"{name}: Holm-adjusted p {p_is(record['test']['parameters'][name]['p_holm'])}"
            for name in record["significant"]
        )
        return "warn", (
            f"Significant q-dependence of {names}: evidence against the model over this q range "
            f"(q = {q} 1/A; Holm-adjusted per-parameter tests at alpha = {fmt(record['alpha'])}"
            f"{'; ' + adjusted if adjusted else ''}; {joint_text}). Or a fit at one q found "
            "another optimum (e.g. reference and sample exchanged): compare the per-q values "
            "and, with joint_q, the joint fit. With honest errors this verdict also comes by "
            f"chance in about {fmt(100 * record['alpha'])} % of datasets whose parameters do not "
            "depend on q; a small adjusted p is stronger evidence."
        )
    return "ok", (
        f"No significant q-dependence of the transport and velocity parameters over q = {q} 1/A "
        f"(alpha = {fmt(record['alpha'])}; {joint_text})."
    )


def statistics_table(record):
    """<table> of the per-parameter tests and the joint test ("" without a test)."""
    test = record["test"]
    if test is None:
        return ""
    rows = [
        [
            name,
            e["unit"],
            f"{fmt(e['mean'])} ± {fmt(e['se'], 3)}",
            fmt(e["chi2"], 4),
            e["dof"],
            fmt(e["p"], 3),
            fmt(e["p_holm"], 3),
            "yes" if e["significant"] else "no",
        ]
        for name, e in test["parameters"].items()
    ]
    joint = test["joint"]
    rows.append(
        [
            "joint (all tested)",
            "-",
            "-",
            fmt(joint["chi2"], 4),
            joint["dof"],
            fmt(joint["p"], 3),
            "-",
            "yes" if joint["significant"] else "no",
        ]
    )
    return table(
        ["parameter", "unit", "weighted mean ± se", "chi2", "dof", "p", "Holm p", "significant"],
        rows,
        numeric=(3, 4, 5, 6),
    )


def joint_html(record):
    """Table of the joint multi-q fit (value ± stderr) and its posterior (mean ± sd, 5-95 %) per
    shared parameter, with the posterior's flags; "" without a joint fit."""
    joint = record.get("joint_fit")
    if joint is None:
        return ""
    posterior = (joint["cmc"] or {}).get("parameters", {})
    rows = []
    for name, entry in joint["parameters"].items():
        if entry["fixed"] or entry["value"] is None:
            continue
        cmc = posterior.get(name)
        rows.append(
            [
                name,
                f"{fmt(entry['value'], 4)} ± {fmt(entry['stderr'], 2)}",
                "-" if cmc is None else f"{fmt(cmc['mean'], 4)} ± {fmt(cmc['sd'], 2)}",
                "-" if cmc is None else f"[{fmt(cmc['q05'], 4)}, {fmt(cmc['q95'], 4)}]",
            ]
        )
    flags = ""
    if joint["cmc"] is not None and joint["cmc"]["flagged"]:
        flags = (
            f'<p class="warn"><strong>Joint posterior flagged:</strong> '
            f"{esc('; '.join(joint['cmc']['flag_reasons']))}.</p>"
        )
    heading = "<p>Joint multi-q fit (shared parameters; the fractions, contrasts and offsets stay per q bin):</p>"
    return (
        heading
        + "\n"
        + table(["parameter", "joint NLSQ ± se", "joint posterior mean ± sd", "posterior 5-95 %"], rows, numeric=())
        + flags
    )


def left_out_text(record):
    if not record["left_out"]:
        return ""
    items = "; ".join(f"{e['name']} ({e['reason']})" for e in record["left_out"])
    return f"<p>Not tested: {esc(items)}.</p>"


def figures_html(folder, prefix):
    """Embedded cross-q figures (screen-resolution PNG with its .rst caption) of ``folder``, "" when
    there are none."""
    folder = Path(folder)
    out = []
    for png in sorted(folder.glob("*.png")) if folder.is_dir() else []:
        caption = png.with_suffix(".rst")
        text = caption.read_text(encoding="utf-8") if caption.is_file() else png.stem
        out.append(png_figure(screen_png(png.read_bytes()), f"{prefix}{png.stem}", text))
    return "\n".join(out)


def verdict_paragraph(record):
    css, text = flag_text(record)
    return f'<p class="{css}"><strong>Cross-q:</strong> {esc(text)}</p>'


def cross_q_html(record, figures=""):
    """The cross-q block: verdict, test table, parameters left out, ``figures`` markup."""
    return "\n".join(
        part
        for part in (
            verdict_paragraph(record),
            statistics_table(record),
            left_out_text(record),
            joint_html(record),
            figures,
        )
        if part
    )
