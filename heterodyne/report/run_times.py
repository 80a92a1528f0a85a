"""Run time per workflow step from Snakemake benchmark files ``results/{d}/benchmarks/*.tsv``.

Snakemake writes a header line (``s``, ``h:m:s``, ``max_rss``, ...) and one line per repeat;
the step's run time is the mean of the ``s`` column (wall-clock seconds).
"""

import csv
from pathlib import Path

from heterodyne.errors import InputError


def read_benchmark(path):
    """Mean wall time in s over the repeats recorded in one benchmark TSV."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    try:
        seconds = [float(row["s"]) for row in rows]
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"{path}: not a Snakemake benchmark file (column 's' of wall seconds: {err}); delete it and re-run the rule"
        ) from err
    if not seconds:
        raise InputError(f"{path}: benchmark file has no data row; delete it and re-run the rule")
    return sum(seconds) / len(seconds)


def step_run_times(results_dir):
    """{step: seconds} for every ``benchmarks/*.tsv`` (step = file stem), sorted by step; empty
    when the folder is absent."""
    folder = Path(results_dir) / "benchmarks"
    return {path.stem: read_benchmark(path) for path in sorted(folder.glob("*.tsv"))}
