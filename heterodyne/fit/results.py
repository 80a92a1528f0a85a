"""nlsq.json (human-readable) and nlsq.h5 (arrays) of an :class:`~heterodyne.fit.joint_fit.NlsqFit`:
the one module that writes and reads them (:func:`save_results`, :func:`read_nlsq`, :func:`load_nlsq`).

nlsq.json: every key of :func:`result_record`; a reader requires :data:`NLSQ_KEYS`, all 14
parameters with ``value``, ``stderr`` and ``fixed`` (numbers or null) and a square ``covariance``.
``covariance`` holds the full covariance of the free parameters and contrast/offset (``names``,
``matrix``) and the same matrix for independent element noise (``independent``; equal to ``matrix``
unless an angle has the speckle noise model): the CMC combine step widens its posterior by their
ratio. Undefined numbers (stderr of a fixed parameter, the correlation of a parameter with zero
standard error) are written as null.

nlsq.h5: ``c2_model`` (n_phi, N, N), ``covariance`` (n_p, n_p) over the free parameters then
contrast/offset (attr ``names``), ``values`` and ``stderr`` (14,) in canonical order (stderr NaN
where fixed), the provenance attribute.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from heterodyne.atomic import atomic_output, hdf5_writer
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, PARAMETERS
from heterodyne.errors import InputError
from heterodyne.json_record import read_json_record
from heterodyne.provenance import write_provenance_attrs
from heterodyne.weighting.weights_file import same_angles

#: the keys every reader of nlsq.json may rely on (a per-q or joint fit writes all of them)
NLSQ_KEYS = (
    "converged",
    "termination",
    "parameters",
    "phi",
    "contrast",
    "contrast_stderr",
    "offset",
    "offset_stderr",
    "reduced_chi2",
    "reduced_chi2_per_angle",
    "covariance",
    "provenance",
)


def _number(x):
    x = float(x)
    return x if np.isfinite(x) else None


def _numbers(a):
    return [_number(x) for x in np.ravel(a)]


def _exchanged_record(fit):
    """nlsq.json ``exchanged_optimum``: {"parameters": {free name: value}, "delta_chi2"} of the
    other optimum the restart from the exchanged components reached, or None."""
    other = fit.exchanged_optimum
    if other is None:
        return None
    return {
        "parameters": {name: float(other["theta"][INDEX[name]]) for name in fit.free_names},
        "delta_chi2": float(other["delta_chi2"]),
    }


def solver_entries(fit):
    """The nlsq.json entries on the solver run, alike for the per-q and the joint fit."""
    solver = fit.solver
    return {
        "dof": int(fit.dof),
        "n_iterations": int(solver.n_iterations),
        "n_function_evals": int(solver.n_function_evals),
        "wall_time_s": float(solver.wall_time_s),
        "stderr_scaling": solver.stderr_scaling,
        "n_starts": int(solver.n_starts),
        "jacobian_chunked": bool(solver.chunked),
    }


def outcome_entries(fit, held):
    """The leading nlsq.json entries (converged, termination, undetermined, held_fixed), alike for
    the per-q and the joint fit; ``held`` as in :func:`result_record`."""
    return {
        "converged": bool(fit.solver.converged),
        "termination": fit.solver.termination,
        "undetermined": list(fit.solver.undetermined),
        "held_fixed": dict(held or {}),
    }


def covariance_entries(fit, names):
    """The nlsq.json ``correlation`` (of the fitted parameters ``names``, the leading block of
    ``fit.correlation``) and ``covariance`` entries, alike for the per-q and the joint fit."""
    n = len(names)
    return {
        "correlation": {"names": list(names), "matrix": [_numbers(row) for row in fit.correlation[:n, :n]]},
        "covariance": {
            "names": list(fit.covariance_names),
            "matrix": [_numbers(row) for row in fit.covariance],
            "independent": [_numbers(row) for row in fit.covariance_independent],
        },
    }


def result_record(fit, phi, provenance, held=None):
    """The nlsq.json dict of ``fit`` at angles ``phi`` (deg); ``held`` maps parameters the step held
    fixed although the config frees them to the reason (``held_fixed``)."""
    free = set(fit.free_names)
    parameters = {
        p.name: {
            "value": float(fit.theta[k]),
            "stderr": _number(fit.theta_stderr[k]) if p.name in free else None,
            "fixed": p.name not in free,
            "at_bound": bool(fit.at_bound[k]),
            "unit": p.unit,
        }
        for k, p in enumerate(PARAMETERS)
    }
    return {
        **outcome_entries(fit, held),
        "parameters": parameters,
        "phi": _numbers(phi),
        "contrast": _numbers(fit.contrast),
        "contrast_stderr": _numbers(fit.contrast_stderr),
        "offset": _numbers(fit.offset),
        "offset_stderr": _numbers(fit.offset_stderr),
        "chi2": float(fit.chi2),
        "reduced_chi2": float(fit.reduced_chi2),
        "reduced_chi2_per_angle": _numbers(fit.reduced_chi2_per_angle),
        "n_valid_pairs_per_angle": [int(n) for n in fit.n_valid_per_angle],
        **solver_entries(fit),
        "exchanged_optimum": _exchanged_record(fit),
        **covariance_entries(fit, fit.free_names),
        "provenance": provenance,
    }


def write_result_files(json_path, h5_path, record, write_arrays):
    """Write the JSON ``record`` and an HDF5 file that ``write_arrays(f)`` fills, with the record's
    provenance attribute; both appear (renamed from temporary files) only if both were written
    completely. Shared by the per-q and the joint multi-q fit."""
    with atomic_output(h5_path) as h5_tmp, atomic_output(json_path) as json_tmp:
        with hdf5_writer(h5_tmp) as f:
            write_arrays(f)
            write_provenance_attrs(f, record["provenance"])
        json_tmp.write_text(json.dumps(record, indent=2) + "\n")


def save_results(json_path, h5_path, fit, phi, c2_model, provenance, held=None):
    """Write nlsq.json and nlsq.h5 (module docstring) of ``fit`` with model maps ``c2_model``."""

    def write_arrays(f):
        f.create_dataset("c2_model", data=np.asarray(c2_model, dtype=np.float64))
        cov = f.create_dataset("covariance", data=np.asarray(fit.covariance, dtype=np.float64))
        cov.attrs["names"] = json.dumps(list(fit.covariance_names))
        values = f.create_dataset("values", data=np.asarray(fit.theta, dtype=np.float64))
        values.attrs["names"] = json.dumps(list(PARAMETER_NAMES))
        f.create_dataset("stderr", data=np.asarray(fit.theta_stderr, dtype=np.float64))

    write_result_files(json_path, h5_path, result_record(fit, phi, provenance, held), write_arrays)


@dataclass(frozen=True)
class NlsqResult:
    """A saved NLSQ fit: ``path`` of its nlsq.json, ``record`` the checked nlsq.json dict, ``values``
    (14,) in canonical order, ``c2_model`` (n_phi, N, N) from nlsq.h5 (None when only nlsq.json was
    read)."""

    path: Path
    record: dict
    values: np.ndarray
    c2_model: np.ndarray | None = None

    @property
    def parameters(self):
        return self.record["parameters"]

    def value(self, name):
        return float(self.parameters[name]["value"])

    def stderr(self, name):
        """Standard error of a free parameter; None for a fixed one."""
        se = self.parameters[name]["stderr"]
        return None if se is None else float(se)

    @property
    def contrast(self):
        return np.asarray(self.record["contrast"], dtype=np.float64)

    @property
    def offset(self):
        return np.asarray(self.record["offset"], dtype=np.float64)

    @property
    def reduced_chi2_per_angle(self):
        return np.asarray(self.record["reduced_chi2_per_angle"], dtype=np.float64)


def _check_number(value, path, what, rerun):
    if value is not None and not isinstance(value, (int, float)):
        raise InputError(f"{path}: {what} is not a number ({value!r}); re-run `heterodyne {rerun}`")


def check_record(path, record, rerun="fit-nlsq"):
    """InputError naming ``path`` and the ``heterodyne {rerun}`` step unless the nlsq.json dict
    ``record`` has every parameter with value/stderr/fixed and a square numeric covariance."""
    parameters, block = record["parameters"], record["covariance"]
    if not isinstance(parameters, dict) or not isinstance(block, dict):
        raise InputError(f"{path}: 'parameters' and 'covariance' must be objects; re-run `heterodyne {rerun}`")
    missing = [name for name in PARAMETER_NAMES if name not in parameters]
    if missing:
        raise InputError(
            f"{path}: 'parameters' lacks {', '.join(missing)}; all 14 physics "
            f"parameters are expected, re-run `heterodyne {rerun}`"
        )
    for p in PARAMETERS:
        entry = parameters[p.name]
        if not isinstance(entry, dict) or not {"value", "stderr", "fixed"} <= set(entry):
            raise InputError(
                f"{path}: parameter {p.name} missing or without value/stderr/fixed; re-run `heterodyne {rerun}`"
            )
        _check_number(entry["value"], path, f"the value of {p.name}", rerun)
        _check_number(entry["stderr"], path, f"the stderr of {p.name}", rerun)
    names, matrix = block.get("names"), block.get("matrix")
    if (
        not isinstance(names, list)
        or not isinstance(matrix, list)
        or len(matrix) != len(names)
        or any(not isinstance(row, list) or len(row) != len(names) for row in matrix)
    ):
        raise InputError(f"{path}: covariance block is not a square matrix over its names; re-run `heterodyne {rerun}`")
    for row in matrix:
        for x in row:
            _check_number(x, path, "a covariance entry", rerun)


def read_nlsq(path, phi=None):
    """:class:`NlsqResult` of the nlsq.json at ``path`` (without the model maps), checked once
    (module docstring); with ``phi`` [deg], also that the fit is of these angles."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: nlsq.json not found; run `heterodyne fit-nlsq` for this q bin first")
    record = read_json_record(path, NLSQ_KEYS, "fit-nlsq")
    check_record(path, record)
    if phi is not None:
        reference = np.asarray(phi, dtype=np.float64)
        if not same_angles(record["phi"], reference):
            raise InputError(
                f"{path}: 'phi' = {np.asarray(record['phi'], float).tolist()} does not match the "
                f"dataset's angles {reference.tolist()}; re-run the step that wrote {path} on "
                "this dataset"
            )
    values = np.array([record["parameters"][name]["value"] for name in PARAMETER_NAMES], dtype=np.float64)
    return NlsqResult(path=path, record=record, values=values)


def load_nlsq(json_path, h5_path, n_phi=None):
    """:class:`NlsqResult` of nlsq.json and the model maps of nlsq.h5; with ``n_phi``, check both
    describe that many angles."""
    result = read_nlsq(json_path)
    try:
        with h5py.File(h5_path, "r") as f:
            c2_model = np.asarray(f["c2_model"][()], dtype=np.float64)
    except (OSError, KeyError) as err:
        raise InputError(f"{h5_path}: cannot read dataset 'c2_model' ({err}); re-run `heterodyne fit-nlsq`") from err
    if n_phi is not None:
        for key in ("phi", "contrast", "offset", "reduced_chi2_per_angle"):
            if len(result.record[key]) != n_phi:
                raise InputError(
                    f"{json_path}: '{key}' has {len(result.record[key])} entries, the dataset "
                    f"has {n_phi} angles; re-run `heterodyne fit-nlsq` on this dataset"
                )
        if c2_model.ndim != 3 or c2_model.shape[0] != n_phi:
            raise InputError(
                f"{h5_path}: 'c2_model' has shape {c2_model.shape}, expected "
                f"({n_phi}, N, N); re-run `heterodyne fit-nlsq` on this dataset"
            )
    return NlsqResult(path=result.path, record=result.record, values=result.values, c2_model=c2_model)
