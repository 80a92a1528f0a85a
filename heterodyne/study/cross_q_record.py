"""cross_q.json: the per-q estimates of one dataset, the cross-q test and the rates at t_ref.

Inputs, per q bin folder ``results/<dataset>/<q folder>/``: nlsq.json (required), dataset.h5
(required: the bin's q [1/A] and its time grid t [s]; nlsq.json must record it among its inputs)
and cmc/summary.json (optional: the CMC posterior quantiles). Optionally the nlsq.json of a joint
multi-q fit (shared parameters), shown beside the per-q estimates and never part of the test (its
data are the same as the per-q fits').

Layout of the record (units: each parameter's, see :mod:`heterodyne.core.parameters`; q in 1/A):

* ``dataset``, ``folders``, ``q`` (increasing), ``q_unit``, ``alpha``;
* ``estimates``: {parameter: {unit, role ("q-independent" or "fraction"), ``nlsq`` [per q:
  {value, stderr, fixed}], ``cmc`` [per q: {mean, sd, q05, q50, q95} or null where the bin has no
  CMC summary or did not sample the parameter]}} for all 14 parameters;
* ``test``: the :func:`heterodyne.study.cross_q.summary` statistics ({names, parameters: {name:
  {unit, mean, se, chi2, dof, p, p_holm, significant}}, joint: {names, chi2, dof, p,
  significant}}), or null with ``reason`` saying why (fewer than 2 q bins, no parameter free and
  determined in every fit, a singular covariance); ``reason`` is null when the test ran;
* ``left_out``: [{name, reason}] of the parameters not tested;
* ``q_dependent``: True when a parameter is significant after Holm's correction or the joint test
  rejects (null without a test); ``significant``: the names significant after Holm;
* ``rates``: ``t_ref`` [s] (``t_ref_rule`` says how it was chosen) and, for ``decay_ref``,
  ``decay_sample`` and ``phase``: ``parameters`` (the three it is made of), ``rate`` and
  ``rate_stderr`` per q bin (J_ref, J_sample [A^2/s] or v [A/s] at t_ref, unit ``rate_unit``),
  ``values`` and ``stderr`` per q bin (q^q_power x rate, ``q_power`` 2 for the decays and 1 for the
  phase; unit ``unit`` = 1/s), and ``mean``, ``mean_se``, ``mean_rule``: the rate averaged over the
  bins, through which the reference lines q^2 J resp. q v are drawn. Standard errors are
  propagated from the NLSQ covariance (linearised in D0, alpha, D_offset resp. v0, beta, v_offset;
  null where the covariance is not finite);
* ``joint_fit``: null, or {file, parameters: {name: {value, stderr, fixed}}, rates: {J_ref,
  J_sample, v at t_ref}, cmc}; ``cmc`` is null or, from the joint posterior's summary.json
  (:mod:`heterodyne.cmc.summary_file`), {file, flagged, flag_reasons, parameters: {shared name:
  {mean, sd, q05, q50, q95}}};
* ``provenance`` (added by the CLI).

This module is the one that writes (:func:`save_cross_q`) and reads (:func:`read_cross_q`) cross_q.json.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.atomic import atomic_output
from heterodyne.cmc.summary_file import read_joint_summary, read_summary
from heterodyne.core.parameters import FRACTION_NAMES, PARAMETERS
from heterodyne.core.physics import transport_rate, velocity_rate
from heterodyne.data.dataset import load_dataset_grid
from heterodyne.errors import InputError
from heterodyne.fit.joint_q_results import read_joint_nlsq
from heterodyne.fit.results import read_nlsq
from heterodyne.json_record import read_json_record
from heterodyne.lineage import check_lineage
from heterodyne.study import cross_q

#: the keys every reader of cross_q.json may rely on
CROSS_Q_KEYS = ("dataset", "q", "alpha", "test", "reason", "left_out", "q_dependent", "significant")
#: rate name -> (kind, parameter names in argument order, unit of the rate before the q factor)
RATES = {
    "decay_ref": ("transport", ("D0_ref", "alpha_ref", "D_offset_ref"), "A^2/s"),
    "decay_sample": ("transport", ("D0_sample", "alpha_sample", "D_offset_sample"), "A^2/s"),
    "phase": ("velocity", ("v0", "beta", "v_offset"), "A/s"),
}
T_REF_RULE = (
    "mean time of the maps: the mean of t (s, since the start of acquisition) over the time grids of the q bins"
)


def read_bin(folder):
    """{folder, q, t, nlsq, cmc, files} of one per-q results folder (files: those read)."""
    folder = Path(folder)
    data, nlsq_path, summary_path = folder / "dataset.h5", folder / "nlsq.json", folder / "cmc" / "summary.json"
    nlsq = read_nlsq(nlsq_path).record
    q, t = load_dataset_grid(data)
    check_lineage({nlsq_path: [data]})
    cmc = read_summary(summary_path).record if summary_path.is_file() else None  # CMC is optional here
    files = [nlsq_path, data] + ([summary_path] if cmc is not None else [])
    return {"folder": folder, "q": q, "t": t, "nlsq": nlsq, "cmc": cmc, "files": files}


def read_bins(folders):
    """:func:`read_bin` of every folder, sorted by q; InputError when two share a q or the folders
    belong to different datasets."""
    if not folders:
        raise InputError("--folders: give at least one per-q results folder")
    parents = sorted({Path(f).resolve().parent.name for f in folders})
    if len(parents) > 1:
        raise InputError(
            f"--folders: the q bins belong to different datasets ({', '.join(parents)}); "
            "the cross-q test compares the q bins of one dataset"
        )
    bins = sorted((read_bin(f) for f in folders), key=lambda b: b["q"])
    qs = [b["q"] for b in bins]
    if len(set(qs)) != len(qs):
        raise InputError(f"--folders: two folders have the same q ({qs}); give each q bin once")
    return bins


def _number(x):
    return float(x) if x is not None and np.isfinite(x) else None


def _cmc_entry(cmc, name):
    if cmc is None or name not in cmc["parameters"]:
        return None
    entry = cmc["parameters"][name]
    return {key: _number(entry.get(key)) for key in ("mean", "sd", "q05", "q50", "q95")}


def estimates(bins):
    """The ``estimates`` block: NLSQ value/stderr/fixed and CMC quantiles of every parameter per q."""
    out = {}
    for p in PARAMETERS:
        role = "fraction" if p.name in FRACTION_NAMES else "q-independent"
        nlsq = [
            {
                "value": _number(b["nlsq"]["parameters"][p.name]["value"]),
                "stderr": _number(b["nlsq"]["parameters"][p.name]["stderr"]),
                "fixed": bool(b["nlsq"]["parameters"][p.name]["fixed"]),
            }
            for b in bins
        ]
        out[p.name] = {"unit": p.unit, "role": role, "nlsq": nlsq, "cmc": [_cmc_entry(b["cmc"], p.name) for b in bins]}
    return out


def _covariance(record, names):
    """Cov (k, k) of ``names`` from the record's covariance block; 0 rows/columns for the names
    not in it (fixed); NaN where the file holds null."""
    block = record["covariance"]
    matrix = np.array([[np.nan if x is None else x for x in row] for row in block["matrix"]], dtype=np.float64)
    at = [block["names"].index(n) if n in block["names"] else None for n in names]
    cov = np.zeros((len(names), len(names)))
    for i, a in enumerate(at):
        for j, b in enumerate(at):
            if a is not None and b is not None:
                cov[i, j] = matrix[a, b]
    return cov


def rate_at(record, rate, t_ref):
    """(value, se) of J(t_ref) [A^2/s] or v(t_ref) [A/s] for ``rate`` (a key of RATES) from an
    nlsq.json record, by :func:`heterodyne.core.physics.transport_rate` resp. ``velocity_rate``;
    se by linear propagation of the NLSQ covariance of the three parameters (their gradient
    (t^a, A t^a ln t, 1) at amplitude A, exponent a, by autodiff), None when not finite. t_ref > 0."""
    kind, names, _ = RATES[rate]
    function = transport_rate if kind == "transport" else velocity_rate
    args = jnp.asarray([float(record["parameters"][n]["value"]) for n in names])
    value, gradient = jax.value_and_grad(lambda p: function(t_ref, *p))(args)
    if kind == "transport" and value <= 0:  # J = max(., 0): clipped, no gradient
        return 0.0, None
    gradient = np.asarray(gradient)
    se = float(np.sqrt(gradient @ _covariance(record, names) @ gradient))
    return float(value), (se if np.isfinite(se) else None)


def mean_rate(values, stderr):
    """(mean, se, rule) of the per-q rates: inverse-variance weighted when every se is positive
    and finite, else the plain mean (se None)."""
    values = np.asarray(values, dtype=np.float64)
    se = np.array([np.nan if s is None else s for s in stderr], dtype=np.float64)
    if np.all(np.isfinite(se)) and np.all(se > 0):
        w = 1.0 / se**2
        return float(np.sum(w * values) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w))), "inverse-variance weighted mean"
    return float(np.mean(values)), None, "plain mean (some bin has no positive finite standard error)"


def reference_time(bins):
    """(t_ref [s], rule): the mean time of the maps (:data:`T_REF_RULE`), 1 s if that is not > 0."""
    t_ref = float(np.mean([np.mean(b["t"]) for b in bins]))
    if np.isfinite(t_ref) and t_ref > 0:
        return t_ref, T_REF_RULE
    return 1.0, "t = 1 s (the mean time of the maps is not positive)"


def rates(bins, t_ref, rule):
    """The ``rates`` block (see the module docstring)."""
    q = np.array([b["q"] for b in bins])
    out = {"t_ref": t_ref, "t_ref_unit": "s", "t_ref_rule": rule}
    for rate, (kind, names, unit) in RATES.items():
        base = [rate_at(b["nlsq"], rate, t_ref) for b in bins]
        power = 2 if kind == "transport" else 1
        mean, mean_se, mean_rule = mean_rate([v for v, _ in base], [s for _, s in base])
        out[rate] = {
            "parameters": list(names),
            "q_power": power,
            "rate_unit": unit,
            "rate": [v for v, _ in base],
            "rate_stderr": [s for _, s in base],
            "values": [float(qk**power * v) for qk, (v, _) in zip(q, base, strict=True)],
            "stderr": [None if s is None else float(qk**power * s) for qk, (_, s) in zip(q, base, strict=True)],
            "unit": "1/s",
            "mean": mean,
            "mean_se": mean_se,
            "mean_rule": mean_rule,
        }
    return out


def run_test(bins, alpha):
    """(test dict or None, reason or None, left_out) for the q bins."""
    records, q = [b["nlsq"] for b in bins], [b["q"] for b in bins]
    left = cross_q.left_out(records, q)
    if len(bins) < 2:
        return (
            None,
            (
                f"{len(bins)} q bin: the cross-q test needs at least 2 q bins (a single-q dataset "
                "has nothing to compare)"
            ),
            left,
        )
    names, dropped = cross_q.usable_names(records, q)
    left += dropped
    if not names:
        return None, "no q-independent parameter is free and determined in every fit", left
    try:
        names, theta, cov = cross_q.extract(records, q, names)
        result = cross_q.summary(q, names, theta, cov, alpha, left)
    except (ValueError, np.linalg.LinAlgError) as err:
        return None, f"test not possible: {err}", left
    return {"names": list(names), "parameters": result["parameters"], "joint": result["joint"]}, None, left


def joint_posterior_block(path):
    """The ``cmc`` entry of ``joint_fit`` from the joint posterior's summary.json at ``path``."""
    summary = read_joint_summary(path)
    keys = ("mean", "sd", "q05", "q50", "q95")
    return {
        "file": str(path),
        "flagged": summary.flagged,
        "flag_reasons": summary.flag_reasons,
        "parameters": {
            name: {key: float(summary.parameters[name][key]) for key in keys} for name in summary.shared_parameters
        },
    }


def joint_block(path, t_ref, cmc_path=None):
    """The ``joint_fit`` block from the joint multi-q fit's nlsq.json at ``path`` and, if given, the
    joint posterior's summary.json at ``cmc_path``."""
    record = read_joint_nlsq(path).record
    parameters = {
        p.name: {
            "value": _number(record["parameters"][p.name]["value"]),
            "stderr": _number(record["parameters"][p.name]["stderr"]),
            "fixed": bool(record["parameters"][p.name]["fixed"]),
        }
        for p in PARAMETERS
    }
    at_ref = {}
    for rate in RATES:
        value, se = rate_at(record, rate, t_ref)
        at_ref[rate] = {"rate": value, "rate_stderr": se}
    return {
        "file": str(path),
        "parameters": parameters,
        "rates": at_ref,
        "cmc": None if cmc_path is None else joint_posterior_block(cmc_path),
    }


def build_record(bins, alpha=0.05, joint_path=None, joint_cmc_path=None):
    """The cross_q.json dict (without provenance) of the q ``bins`` (:func:`read_bins`)."""
    test, reason, left = run_test(bins, alpha)
    t_ref, rule = reference_time(bins)
    significant = [] if test is None else [n for n, e in test["parameters"].items() if e["significant"]]
    return {
        "dataset": Path(bins[0]["folder"]).resolve().parent.name,
        "folders": [str(b["folder"]) for b in bins],
        "q": [b["q"] for b in bins],
        "q_unit": "1/A",
        "alpha": float(alpha),
        "estimates": estimates(bins),
        "test": test,
        "reason": reason,
        "left_out": left,
        "q_dependent": None if test is None else cross_q.q_dependent(test),
        "significant": significant,
        "rates": rates(bins, t_ref, rule),
        "joint_fit": None if joint_path is None else joint_block(joint_path, t_ref, joint_cmc_path),
    }


def save_cross_q(path, record):
    """Write the cross_q.json ``record`` (with provenance); ValueError before writing if it holds NaN."""
    text = json.dumps(record, indent=1, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def read_cross_q(path):
    """The cross_q.json record at ``path`` (InputError naming the file when unreadable)."""
    return read_json_record(path, CROSS_Q_KEYS, "cross-q")
