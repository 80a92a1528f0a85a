"""``heterodyne report``: the self-contained HTML report of one dataset, or the index page.

Dataset report: ``--settings CONFIG_JSON --name D --results-dir results/D --output results/D/report.html``.
(``--cross-q results/D/cross_q.json``, optional: add the dataset's cross-q verdict.)
Index page:     ``--index --results-root results --audit results/audit.json --output results/index.html``
(it links the study tables results/parameters.csv and fit_quality.csv where they exist, and shows
the cross-q section of every dataset with results/D/cross_q.json).
"""

from pathlib import Path

from heterodyne.atomic import atomic_output
from heterodyne.audit import read_audit
from heterodyne.cli import add_required_arguments, read_settings
from heterodyne.errors import InputError
from heterodyne.provenance import provenance_record
from heterodyne.report.collect import collect
from heterodyne.report.dataset_page import render_dataset_page
from heterodyne.report.index_page import cross_q_files, dataset_reports, render_index_page, study_tables
from heterodyne.study.cross_q_record import read_cross_q


def add_arguments(parser):
    parser.add_argument("--index", action="store_true", help="write the project index page instead")
    parser.add_argument("--settings", metavar="JSON", help="the whole config as JSON (dataset report)")
    parser.set_defaults(settings_sections=("config",))
    parser.add_argument("--name", help="dataset name shown in the report (dataset report)")
    parser.add_argument("--results-dir", help="results/D (dataset report)")
    parser.add_argument("--results-root", help="results (index page)")
    parser.add_argument("--audit", help="results/audit.json written by `heterodyne audit` (index page)")
    parser.add_argument(
        "--cross-q",
        metavar="JSON",
        help="results/D/cross_q.json of the dataset (`heterodyne cross-q`; optional, dataset "
        "report): show its cross-q verdict",
    )
    add_required_arguments(parser, output="HTML file to write")


def _require(args, names, mode):
    missing = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) is None]
    if missing:
        raise InputError(
            f"missing option(s) {', '.join(missing)}, needed for the {mode}; see `heterodyne report --help`"
        )


def run(args):
    if args.index:
        _require(args, ("results_root", "audit"), "index page (--index)")
        inputs = [folder / "report.html" for folder in dataset_reports(args.results_root)]
        inputs += study_tables(args.results_root)
        inputs += cross_q_files(args.results_root)
        audit = read_audit(args.audit)
        html = render_index_page(args.results_root, audit, provenance_record({}, [*inputs, args.audit]))
    else:
        _require(args, ("settings", "name", "results_dir"), "dataset report")
        config = read_settings(args)["config"]
        results = collect(args.results_dir)
        cross_q = read_cross_q(args.cross_q) if args.cross_q else None
        provenance = provenance_record(config, [*results.input_files, *([args.cross_q] if args.cross_q else [])])
        html = render_dataset_page(args.name, results, config, provenance, Path(args.output).parent, cross_q)
    with atomic_output(args.output) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")
    return 0
