"""``heterodyne tables``: the study tables results/parameters.csv and results/fit_quality.csv.

``--results-root results --datasets A B ... --parameters results/parameters.csv
--fit-quality results/fit_quality.csv``; without ``--datasets``, every folder under the results
root holding an nlsq.json. Columns: :mod:`heterodyne.report.study_tables`.
"""

from heterodyne.provenance import provenance_record
from heterodyne.report.study_tables import build_tables, dataset_folders, write_tables


def add_arguments(parser):
    parser.add_argument("--results-root", required=True, help="results folder holding one folder per dataset")
    parser.add_argument("--datasets", nargs="+", help="dataset folders to tabulate (default: every */nlsq.json)")
    parser.add_argument("--parameters", required=True, help="parameters CSV to write")
    parser.add_argument("--fit-quality", required=True, help="fit quality CSV to write")


def run(args):
    parameters, quality, inputs = build_tables(dataset_folders(args.results_root, args.datasets))
    write_tables(args.parameters, args.fit_quality, parameters, quality, provenance_record({}, inputs))
    print(f"{args.parameters}: {len(parameters)} rows; {args.fit_quality}: {len(quality)} rows")
    return 0
