"""``heterodyne study-figure``: each free parameter against the dataset over a study.

``--settings '{"datasets": {...}}' --parameters results/parameters.csv --outdir results/study``
draws :mod:`heterodyne.plots.study` from the study table (x axis: the datasets' ``label``
where every dataset has one) into --outdir (replaced as a whole, only on success).
"""

from heterodyne.atomic import atomic_folder
from heterodyne.cli import add_step_arguments, read_settings
from heterodyne.errors import InputError
from heterodyne.plots.study import write_study_figure
from heterodyne.provenance import provenance_record
from heterodyne.report.study_tables import PARAMETER_COLUMNS, read_table


def add_arguments(parser):
    add_step_arguments(
        parser, ("datasets",), parameters="results/parameters.csv (`heterodyne tables`)", outdir="results/study"
    )


def run(args):
    datasets = read_settings(args)["datasets"]
    rows = read_table(args.parameters, PARAMETER_COLUMNS)
    unknown = sorted({r["dataset"] for r in rows} - set(datasets))
    if unknown:
        raise InputError(
            f"{args.parameters}: datasets {unknown} are not in the config's 'datasets' "
            f"({sorted(datasets)}); rebuild the tables from this config's results"
        )
    labels = {name: entry.get("label") for name, entry in datasets.items()}
    provenance = provenance_record({"datasets": datasets}, [args.parameters])
    with atomic_folder(args.outdir) as outdir:
        png = write_study_figure(outdir, rows, labels, provenance)
    print(f"{args.outdir}/{png.name}")
    return 0
