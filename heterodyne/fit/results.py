"""nlsq.json (human-readable) and nlsq.h5 (arrays) of an :class:`~heterodyne.fit.joint_fit.NlsqFit`.

JSON keys follow the workflow contract. ``covariance`` holds the full covariance of the free
parameters and contrast/offset (``names``, ``matrix``) and the same matrix for independent element
noise (``independent``; equal to ``matrix`` unless an angle has the speckle noise model): the
CMC combine step widens its posterior by their ratio. Undefined numbers (stderr of a fixed parameter, the
correlation of a parameter with zero standard error) are written as null.
"""

import json

import numpy as np

from heterodyne.atomic import atomic_output, hdf5_writer
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, PARAMETERS
from heterodyne.provenance import write_provenance_attrs


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
    return {"parameters": {name: float(other["theta"][INDEX[name]]) for name in fit.free_names},
            "delta_chi2": float(other["delta_chi2"])}


def result_record(fit, phi, provenance, held=None):
    """The nlsq.json dict of ``fit`` at angles ``phi`` (deg); ``held`` maps parameters the step held
    fixed although the config frees them to the reason (``held_fixed``)."""
    free = set(fit.free_names)
    parameters = {p.name: {"value": float(fit.theta[k]),
                           "stderr": _number(fit.theta_stderr[k]) if p.name in free else None,
                           "fixed": p.name not in free, "at_bound": bool(fit.at_bound[k]), "unit": p.unit}
                  for k, p in enumerate(PARAMETERS)}
    n_free = len(fit.free_names)
    return {"converged": bool(fit.converged), "termination": fit.termination,
            "undetermined": list(fit.undetermined), "held_fixed": dict(held or {}),
            "parameters": parameters, "phi": _numbers(phi),
            "contrast": _numbers(fit.contrast), "contrast_stderr": _numbers(fit.contrast_stderr),
            "offset": _numbers(fit.offset), "offset_stderr": _numbers(fit.offset_stderr),
            "chi2": float(fit.chi2), "reduced_chi2": float(fit.reduced_chi2),
            "reduced_chi2_per_angle": _numbers(fit.reduced_chi2_per_angle),
            "n_valid_pairs_per_angle": [int(n) for n in fit.n_valid_per_angle],
            "dof": int(fit.dof), "n_iterations": int(fit.n_iterations),
            "n_function_evals": int(fit.n_function_evals), "wall_time_s": float(fit.wall_time_s),
            "stderr_scaling": fit.stderr_scaling, "n_starts": int(fit.n_starts),
            "jacobian_chunked": bool(fit.chunked),
            "exchanged_optimum": _exchanged_record(fit),
            "correlation": {"names": list(fit.free_names),
                            "matrix": [_numbers(row) for row in fit.correlation[:n_free, :n_free]]},
            "covariance": {"names": list(fit.covariance_names),
                           "matrix": [_numbers(row) for row in fit.covariance],
                           "independent": [_numbers(row) for row in fit.covariance_independent]},
            "provenance": provenance}


def save_results(json_path, h5_path, fit, phi, c2_model, provenance, held=None):
    """Write nlsq.json and nlsq.h5; both appear (renamed from temporary files) only if both were
    written completely."""
    with atomic_output(h5_path) as h5_tmp, atomic_output(json_path) as json_tmp:
        with hdf5_writer(h5_tmp) as h5:
            _write_h5(h5, fit, c2_model, provenance)
        json_tmp.write_text(json.dumps(result_record(fit, phi, provenance, held), indent=2) + "\n")


def _write_h5(f, fit, c2_model, provenance):
    """nlsq.h5 into the open file ``f``: c2_model (n_phi, N, N), covariance (n_p, n_p) over the
    free parameters then contrast/offset (attr ``names``), values and stderr (14,) in canonical
    order (stderr NaN where fixed), provenance attribute."""
    f.create_dataset("c2_model", data=np.asarray(c2_model, dtype=np.float64))
    cov = f.create_dataset("covariance", data=np.asarray(fit.covariance, dtype=np.float64))
    cov.attrs["names"] = json.dumps(list(fit.covariance_names))
    values = f.create_dataset("values", data=np.asarray(fit.theta, dtype=np.float64))
    values.attrs["names"] = json.dumps(list(PARAMETER_NAMES))
    f.create_dataset("stderr", data=np.asarray(fit.theta_stderr, dtype=np.float64))
    write_provenance_attrs(f, provenance)
