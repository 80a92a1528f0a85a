"""``heterodyne tables``: the study tables results/parameters.csv and results/fit_quality.csv.

``--folders results/A/q0.01 results/A/q0.005 ... --parameters results/parameters.csv
--fit-quality results/fit_quality.csv`` tabulates the given per-q folders
``results/<dataset>/<q folder>/`` (shell: ``--folders results/*/q*/``). Columns:
:mod:`heterodyne.report.study_tables`.
"""

from heterodyne.cli import add_folders_argument, add_required_arguments
from heterodyne.provenance import provenance_record
from heterodyne.report.study_tables import build_tables, write_tables


def add_arguments(parser):
    add_folders_argument(parser, "per-q result folders results/<dataset>/<q folder> to tabulate")
    add_required_arguments(parser, parameters="parameters CSV to write", fit_quality="fit quality CSV to write")


def run(args):
    parameters, quality, inputs = build_tables(args.folders)
    write_tables(args.parameters, args.fit_quality, parameters, quality, provenance_record({}, inputs))
    print(f"{args.parameters}: {len(parameters)} rows; {args.fit_quality}: {len(quality)} rows")
    return 0
