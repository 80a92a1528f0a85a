"""The result files of one per-q folder that the report and the study tables read."""

from pathlib import Path

from heterodyne.errors import InputError


def result_files(folder, step):
    """{label: path} of the per-q result files in ``folder`` (dataset.h5, weights.json, nlsq.json,
    cmc/summary.json); InputError naming the first missing one and the `heterodyne {step}` that
    needs it."""
    folder = Path(folder)
    paths = {
        "dataset.h5": folder / "dataset.h5",
        "weights.json": folder / "weights.json",
        "nlsq.json": folder / "nlsq.json",
        "cmc/summary.json": folder / "cmc" / "summary.json",
    }
    for label, path in paths.items():
        if not path.is_file():
            raise InputError(
                f"{path}: {label} not found in {folder}; run the workflow steps before `heterodyne {step}`"
            )
    return paths
