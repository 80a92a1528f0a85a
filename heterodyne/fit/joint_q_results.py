"""nlsq.json and nlsq.h5 of a joint multi-q fit (:class:`~heterodyne.fit.joint_q.JointQFit`): the one
module that writes (:func:`save_joint_results`) and reads (:func:`read_joint_nlsq`) them.

nlsq.json has every top-level key of the per-q nlsq.json (:mod:`heterodyne.fit.results`) with the
same meaning, plus ``q_bins``, ``q_per_angle``, ``shared_parameters`` (the joint free names shared
by all bins) and ``fraction_parameters`` (the fractions free per bin, canonical names):

* ``parameters``: the 14 canonical names, then one entry ``name@folder`` (e.g. ``f0@q0.005``) for
  each free fraction of each q bin. A shared or fixed parameter's entry is as in the per-q file.
  A fraction free per q has, under its canonical name, ``value`` and ``stderr`` null, ``fixed``
  false and ``per_q``: the names of its per-q entries. A per-q entry also holds ``parameter``
  (the canonical name), ``folder`` and ``q`` [1/A].
* per-map lists (``phi``, ``contrast``, ``contrast_stderr``, ``offset``, ``offset_stderr``,
  ``reduced_chi2_per_angle``, ``n_valid_pairs_per_angle``): every (q, phi) map, the q bins in
  increasing q and each bin's angles in its dataset's order; ``q_per_angle`` gives each map's q.
* ``q_bins``: per bin {q [1/A], folder, n_angles, data, weights (the input files), chi2,
  reduced_chi2 (chi2_b / (dof n_b / n_valid)), n_valid_pairs, values (its 14 parameters by name)}.
* ``correlation`` over the joint free names; ``covariance`` over those and every map's
  ``contrast_a@folder`` / ``offset_a@folder`` (``contrast@folder`` with shared scaling).
* ``chi2``, ``dof``, ``reduced_chi2``: over all bins; ``stderr_scaling`` names the estimator.
* ``provenance``: inputs = every dataset and weights file.

nlsq.h5: ``values`` and ``stderr`` (n_q, 14) every bin's parameters in canonical order (attr
``names``; stderr NaN where fixed), ``q`` (n_q,) [1/A] (attr ``folders``), ``covariance``
(n_p, n_p) (attr ``names``), group ``c2_model`` with one (n_phi_b, N_b, N_b) model map stack per
bin folder, and the provenance attribute.

A reader requires the per-q keys and checks (:func:`heterodyne.fit.results.check_record`) and
:data:`JOINT_KEYS`.
"""

import json
from pathlib import Path

import numpy as np

from heterodyne.core.parameters import FRACTION_NAMES, PARAMETER_NAMES, PARAMETERS
from heterodyne.errors import InputError
from heterodyne.fit.joint_q_layout import PER_Q_SEPARATOR
from heterodyne.fit.results import (
    NLSQ_KEYS,
    _number,
    _numbers,
    check_record,
    covariance_entries,
    outcome_entries,
    solver_entries,
    write_result_files,
)
from heterodyne.json_record import JointRecord, read_json_record

#: the keys of the joint nlsq.json beyond the per-q ones (NLSQ_KEYS)
JOINT_KEYS = ("shared_parameters", "fraction_parameters", "q_bins", "q_per_angle")


def _parameters(fit):
    free = dict(zip(fit.names, range(len(fit.names)), strict=True))
    entries = {}
    for k, p in enumerate(PARAMETERS):
        per_q = [name for name in fit.names if name.split(PER_Q_SEPARATOR)[0] == p.name and PER_Q_SEPARATOR in name]
        if per_q:
            entries[p.name] = {
                "value": None,
                "stderr": None,
                "fixed": False,
                "at_bound": False,
                "unit": p.unit,
                "per_q": per_q,
            }
        elif p.name in free:
            j = free[p.name]
            entries[p.name] = {
                "value": float(fit.x[j]),
                "stderr": _number(fit.x_stderr[j]),
                "fixed": False,
                "at_bound": bool(fit.x_at_bound[j]),
                "unit": p.unit,
            }
        else:
            entries[p.name] = {
                "value": float(fit.thetas[0, k]),
                "stderr": None,
                "fixed": True,
                "at_bound": False,
                "unit": p.unit,
            }
    for j, name in enumerate(fit.names):
        if PER_Q_SEPARATOR not in name:
            continue
        base, folder = name.split(PER_Q_SEPARATOR)
        b = fit.folders.index(folder)
        entries[name] = {
            "value": float(fit.x[j]),
            "stderr": _number(fit.x_stderr[j]),
            "fixed": False,
            "at_bound": bool(fit.x_at_bound[j]),
            "unit": PARAMETERS[PARAMETER_NAMES.index(base)].unit,
            "parameter": base,
            "folder": folder,
            "q": float(fit.q[b]),
        }
    return entries


def joint_record(fit, phi, inputs, provenance, held=None):
    """The nlsq.json dict (module docstring) of ``fit``; ``phi`` list of each bin's angles [deg];
    ``inputs`` list of each bin's (data, weights) paths; ``held`` as in the per-q record."""
    bins = [
        {
            "q": float(fit.q[b]),
            "folder": folder,
            "n_angles": len(phi[b]),
            "data": str(inputs[b][0]),
            "weights": str(inputs[b][1]),
            "chi2": float(fit.chi2_per_q[b]),
            "reduced_chi2": float(fit.reduced_chi2_per_q[b]),
            "n_valid_pairs": int(fit.n_valid_per_q[b]),
            "values": {name: float(v) for name, v in zip(PARAMETER_NAMES, fit.thetas[b], strict=True)},
        }
        for b, folder in enumerate(fit.folders)
    ]
    return {
        **outcome_entries(fit, held),
        "parameters": _parameters(fit),
        "shared_parameters": [n for n in fit.names if PER_Q_SEPARATOR not in n],
        "fraction_parameters": [n for n in FRACTION_NAMES if any(x.startswith(n + PER_Q_SEPARATOR) for x in fit.names)],
        "q_bins": bins,
        "phi": _numbers(np.concatenate(phi)),
        "q_per_angle": [float(fit.q[b]) for b in range(len(phi)) for _ in phi[b]],
        "contrast": _numbers(np.concatenate(fit.contrast)),
        "contrast_stderr": _numbers(np.concatenate(fit.contrast_stderr)),
        "offset": _numbers(np.concatenate(fit.offset)),
        "offset_stderr": _numbers(np.concatenate(fit.offset_stderr)),
        "chi2": float(fit.chi2),
        "reduced_chi2": float(fit.reduced_chi2),
        "reduced_chi2_per_angle": _numbers(np.concatenate(fit.reduced_chi2_per_angle)),
        "n_valid_pairs_per_angle": [int(n) for n in np.concatenate(fit.n_valid_per_angle)],
        **solver_entries(fit),
        **covariance_entries(fit, fit.names),
        "provenance": provenance,
    }


def save_joint_results(json_path, h5_path, fit, phi, inputs, c2_models, provenance, held=None):
    """Write nlsq.json and nlsq.h5 (``c2_models``: list of each bin's (n_phi_b, N, N) model maps);
    both appear (renamed from temporary files) only if both were written completely."""

    def write_arrays(f):
        values = f.create_dataset("values", data=np.asarray(fit.thetas, dtype=np.float64))
        values.attrs["names"] = json.dumps(list(PARAMETER_NAMES))
        f.create_dataset("stderr", data=np.asarray(fit.theta_stderr, dtype=np.float64))
        q = f.create_dataset("q", data=np.asarray(fit.q, dtype=np.float64))
        q.attrs["folders"] = json.dumps(list(fit.folders))
        cov = f.create_dataset("covariance", data=np.asarray(fit.covariance, dtype=np.float64))
        cov.attrs["names"] = json.dumps(list(fit.covariance_names))
        group = f.create_group("c2_model")
        for folder, maps in zip(fit.folders, c2_models, strict=True):
            group.create_dataset(folder, data=np.asarray(maps, dtype=np.float64))

    write_result_files(json_path, h5_path, joint_record(fit, phi, inputs, provenance, held), write_arrays)


class JointNlsqResult(JointRecord):
    """A saved joint multi-q fit: ``path`` of its nlsq.json and ``record``, the checked dict."""

    @property
    def q_of_folder(self):
        """{folder: q [1/A]} of the fitted q bins."""
        return {b["folder"]: float(b["q"]) for b in self.record["q_bins"]}


def read_joint_nlsq(path):
    """:class:`JointNlsqResult` of the joint fit's nlsq.json at ``path``; InputError naming the
    file, the missing key and `heterodyne fit-joint-q` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: joint nlsq.json not found; run `heterodyne fit-joint-q` first")
    record = read_json_record(path, NLSQ_KEYS + JOINT_KEYS, "fit-joint-q")
    check_record(path, record, "fit-joint-q")
    for entry in record["q_bins"]:
        if not isinstance(entry, dict) or not {"folder", "q"} <= set(entry):
            raise InputError(f"{path}: 'q_bins' entry {entry!r} lacks 'folder' or 'q'; re-run `heterodyne fit-joint-q`")
    return JointNlsqResult(path=path, record=record)
