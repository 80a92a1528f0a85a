"""Gather everything a dataset report shows from ``results/{d}/`` (workflow layout).

Read: dataset.h5 (source path and SHA-256, selection, angles, provenance), weights.json,
nlsq.json, cmc/summary.json, figures/*.png with their .rst captions (and the .pdf beside each,
which the page links), benchmarks/*.tsv.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import h5py

from heterodyne.data.dataset import load_dataset
from heterodyne.errors import InputError
from heterodyne.json_record import read_json_record
from heterodyne.provenance import read_provenance_attrs
from heterodyne.report.run_times import step_run_times
from heterodyne.report.screen_png import screen_png
from heterodyne.weighting.weights_file import load_weights

#: figure families in report order (PNG stems start with these)
FIGURE_ORDER = ("c2_maps", "one_time_cuts", "noise_vs_lag", "physics_curves", "nlsq_vs_cmc",
                "cmc_corner", "cmc_shards", "cmc_trace")
#: families drawn as heat maps, embedded in full colour (:func:`screen_png`)
HEAT_MAP_FAMILIES = ("c2_maps",)


@dataclass(frozen=True)
class Figure:
    """One figure: ``png`` its screen-resolution copy (PNG bytes), ``pdf`` the path of its vector
    copy."""

    stem: str
    png: bytes
    caption: str
    pdf: Path


@dataclass(frozen=True)
class DatasetResults:
    dataset: object
    weights: object
    nlsq: dict
    cmc: dict
    figures: list
    run_times: dict
    step_provenance: dict
    input_files: list


def figure_rank(stem):
    """Sort key: family position in FIGURE_ORDER, then the stem."""
    for rank, family in enumerate(FIGURE_ORDER):
        if stem.startswith(family):
            return rank, stem
    return len(FIGURE_ORDER), stem


def read_figures(folder):
    """Every ``*.png`` of the figures folder, as a screen-resolution copy, with its ``.rst`` caption
    and ``.pdf`` path, in report order."""
    folder = Path(folder)
    pngs = sorted(folder.glob("*.png"), key=lambda p: figure_rank(p.stem))
    if not pngs:
        raise InputError(f"{folder}: no figures (*.png) found; run `heterodyne figures` first")
    figures = []
    for png in pngs:
        caption, pdf = png.with_suffix(".rst"), png.with_suffix(".pdf")
        for path, what in ((caption, "caption"), (pdf, "PDF copy")):
            if not path.is_file():
                raise InputError(f"{path}: {what} missing for {png.name}; re-run `heterodyne figures`")
        heat_map = png.stem.startswith(HEAT_MAP_FAMILIES)
        figures.append(Figure(png.stem, screen_png(png.read_bytes(), full_colour=heat_map), caption.read_text(), pdf))
    return figures


def collect(results_dir):
    """:class:`DatasetResults` of ``results_dir``; InputError names the first missing file."""
    root = Path(results_dir)
    paths = {"dataset.h5": root / "dataset.h5", "weights.json": root / "weights.json",
             "nlsq.json": root / "nlsq.json", "cmc/summary.json": root / "cmc" / "summary.json"}
    for label, path in paths.items():
        if not path.is_file():
            raise InputError(f"{path}: {label} not found in --results-dir {root}; run the workflow "
                             "steps before `heterodyne report`")
    dataset = load_dataset(paths["dataset.h5"])
    with h5py.File(paths["dataset.h5"], "r") as f:
        dataset_provenance = read_provenance_attrs(f)
    nlsq = read_json_record(paths["nlsq.json"], ("converged", "termination", "parameters", "phi",
                                          "reduced_chi2_per_angle", "provenance"), "fit-nlsq")
    cmc = read_json_record(paths["cmc/summary.json"],
                           ("parameters", "shards", "flagged_shards", "combined", "limits", "nlsq_comparison",
                            "undetermined", "provenance"),
                           "cmc-combine")
    weights_record = json.loads(paths["weights.json"].read_text())
    figures = read_figures(root / "figures")
    step_provenance = {"ingest (dataset.h5)": dataset_provenance,
                       "weight (weights.json)": weights_record.get("provenance"),
                       "fit-nlsq (nlsq.json)": nlsq["provenance"],
                       "cmc-combine (cmc/summary.json)": cmc["provenance"]}
    figure_files = [root / "figures" / f"{fig.stem}.png" for fig in figures]
    return DatasetResults(dataset=dataset, weights=load_weights(paths["weights.json"]), nlsq=nlsq,
                          cmc=cmc, figures=figures, run_times=step_run_times(root),
                          step_provenance=step_provenance,
                          input_files=[*paths.values(), *figure_files])
