"""Gather everything a dataset report shows from ``results/{d}/`` (workflow layout).

Read: dataset.h5 (source path and SHA-256, selection, angles, provenance), weights.json,
nlsq.json, cmc/summary.json, figures/*.png with their .rst captions (and the .pdf beside each,
which the page links), benchmarks/*.tsv.
"""

from dataclasses import dataclass
from pathlib import Path

from heterodyne.cmc.summary_file import read_summary
from heterodyne.data.dataset import load_dataset
from heterodyne.errors import InputError
from heterodyne.fit.results import read_nlsq
from heterodyne.lineage import read_provenance
from heterodyne.report.result_folder import result_files
from heterodyne.report.run_times import step_run_times
from heterodyne.report.screen_png import screen_png
from heterodyne.weighting.weights_file import load_weights

#: figure families in report order (PNG stems start with these)
FIGURE_ORDER = (
    "c2_maps",
    "one_time_cuts",
    "noise_vs_lag",
    "physics_curves",
    "nlsq_vs_cmc",
    "cmc_corner",
    "cmc_shards",
    "cmc_trace",
)
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
    paths = result_files(root, "report")
    nlsq = read_nlsq(paths["nlsq.json"]).record
    cmc = read_summary(paths["cmc/summary.json"]).record
    figures = read_figures(root / "figures")
    step_provenance = {
        "ingest (dataset.h5)": read_provenance(paths["dataset.h5"]),
        "weight (weights.json)": read_provenance(paths["weights.json"]),
        "fit-nlsq (nlsq.json)": nlsq["provenance"],
        "cmc-combine (cmc/summary.json)": cmc["provenance"],
    }
    figure_files = [root / "figures" / f"{fig.stem}.png" for fig in figures]
    return DatasetResults(
        dataset=load_dataset(paths["dataset.h5"]),
        weights=load_weights(paths["weights.json"]),
        nlsq=nlsq,
        cmc=cmc,
        figures=figures,
        run_times=step_run_times(root),
        step_provenance=step_provenance,
        input_files=[*paths.values(), *figure_files],
    )
