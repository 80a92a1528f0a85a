"""The project index page: one row per q bin of a dataset that has ``results/{d}/{q}/report.html``.

Each row links the dataset's report (relative link, so the results folder can be moved or
archived as a whole) and repeats its headline numbers: NLSQ convergence, reduced chi2, number of
flagged CMC shards and of warnings. Then links to the study tables (parameters.csv,
fit_quality.csv; ``heterodyne tables``) where the results folder holds them, the study figure
(``results/study/``, several datasets) where it exists, and the result of
``heterodyne audit`` (audit.json): files checked and every file that failed.

Cross-q consistency: for every dataset whose folder holds ``results/{d}/cross_q.json``
(``heterodyne cross-q``) a section with the verdict, the per-parameter p-values and the figures of
``results/{d}/cross_q/``; a dataset with significant q-dependence is also flagged at the top of
the page. Datasets without cross_q.json are shown as before.

Software: when the versions recorded by the fits (each q bin's nlsq.json and cmc/summary.json) or
those installed for the page differ from requirements.lock, a warning at the top lists them.
"""

from pathlib import Path

from heterodyne.cmc.summary_file import read_summary
from heterodyne.errors import InputError
from heterodyne.fit.results import read_nlsq
from heterodyne.plots.study import STEM as STUDY_STEM
from heterodyne.provenance import package_versions
from heterodyne.report.cross_q_section import (
    CROSS_Q_FIGURES,
    CROSS_Q_JSON,
    JOINT_Q_NLSQ,
    JOINT_Q_POSTERIOR,
    cross_q_html,
    figures_html,
    flag_text,
)
from heterodyne.report.findings import fit_warnings
from heterodyne.report.markup import esc, fmt, page, table
from heterodyne.report.software_section import lock_warning_html
from heterodyne.report.study_tables import TABLE_FILES
from heterodyne.study.cross_q_record import read_cross_q


def dataset_reports(results_root):
    """Sorted per-q folders ``results_root/<dataset>/<q folder>`` holding a report.html."""
    folders = sorted(p.parent for p in Path(results_root).glob("*/*/report.html"))
    if not folders:
        raise InputError(
            f"{results_root}: no <dataset>/<q folder>/report.html found under "
            "--results-root; run `heterodyne report` for each q bin first"
        )
    return folders


def read_records(folder):
    """(nlsq.json record, cmc/summary.json record) of one per-q folder."""
    return read_nlsq(folder / "nlsq.json").record, read_summary(folder / "cmc" / "summary.json").record


def index_row(folder, nlsq, cmc):
    """<tr> of one per-q folder: link and headline numbers from its ``nlsq`` and ``cmc`` records."""
    n_warn = len(fit_warnings(nlsq, cmc))
    name = f"{folder.parent.name}/{folder.name}"
    cells = [
        f'<a href="{esc(name)}/report.html">{esc(name)}</a>',
        esc(fmt(nlsq["converged"])),
        esc(fmt(nlsq["reduced_chi2"], 5)),
        esc(len(cmc["flagged_shards"])),
        f'<span class="{"warn" if n_warn else "ok"}">{n_warn}</span>',
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def recorded_versions(records):
    """{"<dataset>/<q folder>/<record>": {package: version}} from the provenance of each q bin's
    nlsq.json and cmc/summary.json (``records`` {folder: (nlsq, cmc)}; {} where not recorded), then
    "index page": the versions installed now (:func:`heterodyne.provenance.package_versions`)."""
    recorded = {}
    for folder, pair in records.items():
        for name, record in zip(("nlsq.json", "cmc/summary.json"), pair, strict=True):
            provenance = record.get("provenance") or {}
            recorded[f"{folder.parent.name}/{folder.name}/{name}"] = provenance.get("versions", {})
    return {**recorded, "index page": package_versions()}


def study_tables(results_root):
    """The study tables (TABLE_FILES) present at the top of ``results_root``."""
    return [Path(results_root) / name for name in TABLE_FILES if (Path(results_root) / name).is_file()]


def tables_html(results_root):
    """Paragraph linking the study tables (relative links), or "" without any."""
    links = [f'<a href="{esc(path.name)}">{esc(path.name)}</a>' for path in study_tables(results_root)]
    if not links:
        return ""
    return (
        f"<p>Study tables (CSV, <code>heterodyne tables</code>; read with "
        f'<code>pandas.read_csv(path, comment="#")</code>): {", ".join(links)}.</p>\n'
    )


def study_figure_html(results_root):
    """The study figure (results/study/parameters_vs_dataset.png, `heterodyne study-figure`) as a
    relative image link, or "" without it."""
    png = Path(results_root) / "study" / f"{STUDY_STEM}.png"
    if not png.is_file():
        return ""
    src = esc(f"study/{png.name}")
    return (
        f'<h2>Parameters across the study</h2>\n<p><a href="{src}"><img src="{src}" '
        f'alt="fitted parameters against the dataset" style="max-width:100%"></a></p>\n'
    )


def audit_html(audit):
    """Summary line of an audit.json record and a table of the files that failed."""
    failed = [f for f in audit["files"] if not f["passed"]]
    summary = (
        f'<p class="{"ok" if audit["passed"] else "warn"}">Audit (<code>heterodyne audit</code>): '
        f"{len(audit['files'])} files checked against the inputs they record, {len(failed)} failed; "
        f"{audit['not_audited']} files without provenance not audited.</p>"
    )
    if not failed:
        return summary
    return summary + table(["file", "problems"], [[f["file"], "; ".join(f["problems"])] for f in failed])


def cross_q_datasets(results_root):
    """Sorted dataset folders ``results_root/<dataset>`` (those with a per-q report.html) that hold
    a cross_q.json."""
    datasets = sorted({folder.parent for folder in dataset_reports(results_root)})
    return [d for d in datasets if (d / CROSS_Q_JSON).is_file()]


def cross_q_files(results_root):
    """The files the cross-q sections read: each dataset's cross_q.json and cross_q/*.png (for
    the index page's provenance)."""
    files = []
    for d in cross_q_datasets(results_root):
        files.append(d / CROSS_Q_JSON)
        files += sorted((d / CROSS_Q_FIGURES).glob("*.png"))
    return files


def cross_q_sections(results_root):
    """(flags, sections): <li> of each dataset with significant q-dependence, and the cross-q
    section of every dataset with a cross_q.json ("" without any)."""
    flags, sections = [], []
    for d in cross_q_datasets(results_root):
        record = read_cross_q(d / CROSS_Q_JSON)
        css, text = flag_text(record)
        if record["q_dependent"]:
            flags.append(f'<li class="warn"><a href="#cross-q-{esc(d.name)}">{esc(d.name)}</a>: {esc(text)}</li>')
        records = [
            f"{d.name}/{name}" for name in (CROSS_Q_JSON, JOINT_Q_NLSQ, JOINT_Q_POSTERIOR) if (d / name).is_file()
        ]
        link = "<p>Records: " + ", ".join(f'<a href="{esc(r)}">{esc(r)}</a>' for r in records) + ".</p>"
        figures = figures_html(d / CROSS_Q_FIGURES, f"{d.name}-")
        sections.append(
            f'<section id="cross-q-{esc(d.name)}"><h2>Cross-q consistency: {esc(d.name)}</h2>\n'
            f"{cross_q_html(record, figures)}\n{link}</section>"
        )
    flag_html = f"<ul>{''.join(flags)}</ul>\n" if flags else ""
    return flag_html, "\n".join(sections)


def render_index_page(results_root, audit, provenance):
    """Complete HTML of the index page (str), with the ``audit`` record of audit.json and a
    cross-q section per dataset that has results/<dataset>/cross_q.json."""
    folders = dataset_reports(results_root)
    head = "".join(
        f"<th>{h}</th>" for h in ("dataset", "NLSQ converged", "reduced chi2", "flagged CMC shards", "warnings")
    )
    records = {folder: read_records(folder) for folder in folders}
    rows = "".join(index_row(folder, *records[folder]) for folder in folders)
    flags, sections = cross_q_sections(results_root)
    body = (
        f"<h1>heterodyne: {len(folders)} dataset report(s)</h1>\n{flags}"
        f"{lock_warning_html(recorded_versions(records))}\n"
        f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>\n"
        f"{tables_html(results_root)}{study_figure_html(results_root)}{audit_html(audit)}"
        + (f"\n{sections}" if sections else "")
    )
    return page("heterodyne reports", body, provenance)
