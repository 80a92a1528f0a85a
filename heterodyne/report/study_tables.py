"""Study tables: every dataset's fitted numbers as two tidy CSV files over the whole study.

``parameters.csv``, one row per (dataset, q, method, parameter):

* method ``nlsq``: every free physics parameter of nlsq.json (fixed ones are left out) and the
  per-angle ``contrast_a`` and ``offset_a``; ``value`` the estimate, ``stderr_or_sd`` its standard
  error, ``converged`` the fit's convergence flag, ``at_bound`` whether the estimate lies at a bound;
* method ``cmc``: every quantity of cmc/summary.json ``parameters`` (the sampled physics and the
  per-angle contrast/offset); ``value`` the posterior mean, ``stderr_or_sd`` the posterior sd,
  ``q05``/``q50``/``q95`` its quantiles, ``flagged`` whether the combined posterior is flagged
  (summary ``combined.flagged``).

Cells that do not apply to a method are empty. ``phi`` (deg) is given for the per-angle rows.

``fit_quality.csv``, one row per (dataset, q, phi): the NLSQ reduced chi2 of that angle, the fitted
contrast and offset with their standard errors, and the angle's noise model from weights.json
(``independent`` or ``speckle``), its ``sigma`` (the constant element sd, or for a speckle model the
rms element sd over the valid pairs, c2 units) and ``kappa`` (speckle only).

The tables read every per-q folder ``results/<dataset>/<q folder>/``; ``q`` (1/A) is the bin's q
from its dataset.h5, so a study with several q per dataset adds rows, not columns. Both files begin
with ``#`` comment lines: a description
and the provenance record as one line of JSON (``# provenance: {...}``, read back by
:func:`heterodyne.lineage.read_provenance`, so ``heterodyne audit`` checks the tables too); read the tables
with ``pandas.read_csv(path, comment="#")``.
"""

import csv
import io
import json
import math
from pathlib import Path

from heterodyne.atomic import atomic_output
from heterodyne.cmc.summary_file import read_summary
from heterodyne.core.parameters import PARAMETERS
from heterodyne.data.dataset import load_dataset
from heterodyne.errors import InputError
from heterodyne.fit.results import read_nlsq
from heterodyne.lineage import CSV_PROVENANCE_PREFIX, check_lineage
from heterodyne.report.result_folder import result_files
from heterodyne.weighting.weights_file import check_weights_for, load_weights

#: the two tables at the top of the results folder, as the workflow names them
TABLE_FILES = ("parameters.csv", "fit_quality.csv")

PARAMETER_COLUMNS = (
    "dataset",
    "q",
    "method",
    "parameter",
    "phi",
    "value",
    "stderr_or_sd",
    "q05",
    "q50",
    "q95",
    "converged",
    "flagged",
    "at_bound",
    "unit",
)
FIT_QUALITY_COLUMNS = (
    "dataset",
    "q",
    "phi",
    "reduced_chi2",
    "contrast",
    "contrast_stderr",
    "offset",
    "offset_stderr",
    "noise_model",
    "sigma",
    "kappa",
)

PARAMETERS_NOTE = (
    "heterodyne study table: one row per (dataset, q [1/A], method, parameter). nlsq: free physics "
    "parameters and per-angle contrast/offset of nlsq.json; value = estimate, stderr_or_sd = standard "
    "error, converged = the fit converged. cmc: the quantities of cmc/summary.json; value = posterior "
    "mean, stderr_or_sd = posterior sd, q05/q50/q95 = quantiles, flagged = combined posterior flagged. "
    "Empty cells do not apply to the method; phi [deg] for per-angle rows."
)
FIT_QUALITY_NOTE = (
    "heterodyne study table: one row per (dataset, q [1/A], phi [deg]). reduced_chi2, contrast, offset "
    "(and standard errors) from nlsq.json; noise_model, sigma and kappa from weights.json: sigma is the "
    "angle's constant element sd or, for the speckle model, its rms element sd (c2 units)."
)

_UNITS = {p.name: p.unit for p in PARAMETERS}


def parameter_unit(name):
    """Unit of a fitted quantity: the registry's for physics parameters, "1" for contrast/offset."""
    if name in _UNITS:
        return _UNITS[name]
    return "1" if name.startswith(("contrast_", "offset_")) else ""


def angle_of(name):
    """Angle index a of ``contrast_a``/``offset_a``, else None."""
    prefix, _, index = name.rpartition("_")
    return int(index) if prefix in ("contrast", "offset") and index.isdigit() else None


def read_dataset_results(folder):
    """{name, folder, q, phi, nlsq, cmc, weights, files} of one per-q results folder
    ``<dataset>/<q folder>`` (name: the dataset); InputError
    names the first missing or inconsistent file (nlsq.json must be made from this dataset.h5 and
    weights.json)."""
    folder = Path(folder)
    files = result_files(folder, "tables")
    dataset = load_dataset(files["dataset.h5"])
    weights = load_weights(files["weights.json"])
    check_weights_for(dataset, weights, files["weights.json"])
    check_lineage({files["nlsq.json"]: [files["dataset.h5"], files["weights.json"]]})
    nlsq, cmc = read_nlsq(files["nlsq.json"]).record, read_summary(files["cmc/summary.json"]).record
    return {
        "name": folder.parent.name,
        "folder": folder,
        "q": float(dataset.q),
        "phi": [float(p) for p in dataset.phi],
        "nlsq": nlsq,
        "cmc": cmc,
        "weights": weights,
        "files": list(files.values()),
    }


def parameter_rows(results):
    """Rows (dicts keyed by PARAMETER_COLUMNS) of one dataset: NLSQ first, then CMC."""
    base = {"dataset": results["name"], "q": results["q"]}
    nlsq, cmc, phi = results["nlsq"], results["cmc"], results["phi"]
    rows = []
    for name, entry in nlsq["parameters"].items():
        if entry.get("fixed"):
            continue
        rows.append(
            {
                **base,
                "method": "nlsq",
                "parameter": name,
                "value": entry["value"],
                "stderr_or_sd": entry.get("stderr"),
                "converged": bool(nlsq["converged"]),
                "at_bound": bool(entry.get("at_bound", False)),
                "unit": parameter_unit(name),
            }
        )
    for kind in ("contrast", "offset"):
        errors = nlsq.get(f"{kind}_stderr") or [None] * len(nlsq[kind])
        for a, (value, stderr) in enumerate(zip(nlsq[kind], errors, strict=True)):
            rows.append(
                {
                    **base,
                    "method": "nlsq",
                    "parameter": f"{kind}_{a}",
                    "phi": phi[a],
                    "value": value,
                    "stderr_or_sd": stderr,
                    "converged": bool(nlsq["converged"]),
                    "unit": "1",
                }
            )
    flagged = bool(cmc["combined"].get("flagged", False))
    for name, entry in cmc["parameters"].items():
        a = angle_of(name)
        rows.append(
            {
                **base,
                "method": "cmc",
                "parameter": name,
                "phi": None if a is None else phi[a],
                "value": entry["mean"],
                "stderr_or_sd": entry.get("sd"),
                "q05": entry.get("q05"),
                "q50": entry.get("q50"),
                "q95": entry.get("q95"),
                "flagged": flagged,
                "unit": parameter_unit(name),
            }
        )
    return rows


def fit_quality_rows(results):
    """Rows (dicts keyed by FIT_QUALITY_COLUMNS) of one dataset, one per angle."""
    nlsq, weights = results["nlsq"], results["weights"]
    n_phi = len(results["phi"])
    contrast_se = nlsq.get("contrast_stderr") or [None] * n_phi
    offset_se = nlsq.get("offset_stderr") or [None] * n_phi
    rows = []
    for a, phi in enumerate(results["phi"]):
        noise = weights.noise[a] if weights.noise is not None else None
        kappa = noise.kappa if noise is not None and noise.model == "speckle" else None
        rows.append(
            {
                "dataset": results["name"],
                "q": results["q"],
                "phi": phi,
                "reduced_chi2": nlsq["reduced_chi2_per_angle"][a],
                "contrast": nlsq["contrast"][a],
                "contrast_stderr": contrast_se[a],
                "offset": nlsq["offset"][a],
                "offset_stderr": offset_se[a],
                "noise_model": noise.model if noise is not None else "independent",
                "sigma": float(weights.sigma[a]),
                "kappa": kappa,
            }
        )
    return rows


def _cell(value):
    """CSV text of one cell: empty for None/NaN, true/false for booleans, repr-exact floats."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def render_table(columns, rows, note, provenance):
    """CSV text: ``# note``, ``# provenance: {json}``, the header, one line per row."""
    out = io.StringIO()
    out.write(f"# {note}\n{CSV_PROVENANCE_PREFIX}{json.dumps(provenance, sort_keys=True, default=str)}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def build_tables(folders):
    """(parameter rows, fit quality rows, input files) over the dataset ``folders``, in their order."""
    parameters, quality, inputs = [], [], []
    for folder in folders:
        results = read_dataset_results(folder)
        parameters += parameter_rows(results)
        quality += fit_quality_rows(results)
        inputs += results["files"]
    return parameters, quality, inputs


def read_table(path, columns):
    """Rows (dicts of str) of a study table written by :func:`write_tables`, its ``#`` lines
    skipped; InputError when the file is missing or its header is not ``columns``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: study table not found; run `heterodyne tables` first")
    reader = csv.DictReader(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
    if tuple(reader.fieldnames or ()) != tuple(columns):
        raise InputError(
            f"{path}: columns {reader.fieldnames} are not those of a heterodyne study table "
            f"({list(columns)}); rewrite it with `heterodyne tables`"
        )
    return list(reader)


def write_tables(parameters_path, fit_quality_path, parameters, quality, provenance):
    """Write both CSV files atomically, each with the ``provenance`` record."""
    for path, columns, rows, note in (
        (parameters_path, PARAMETER_COLUMNS, parameters, PARAMETERS_NOTE),
        (fit_quality_path, FIT_QUALITY_COLUMNS, quality, FIT_QUALITY_NOTE),
    ):
        with atomic_output(path) as tmp:
            Path(tmp).write_text(render_table(columns, rows, note, provenance), encoding="utf-8")
