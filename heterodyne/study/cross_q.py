"""Cross-q consistency: are the transport and velocity parameters the same at every q?

In the model, D0_ref, alpha_ref, D_offset_ref, D0_sample, alpha_sample, D_offset_sample, v0, beta,
v_offset and phi0 are properties of the sample, not of the scattering vector q, so independent
NLSQ fits of the q bins should agree on them within their errors. The sample fraction f0..f3 may
depend on q and is left out of the verdict.

Estimates. Bin q = 1..n_q gives theta_q (p,) (each entry in its parameter's unit, see
:mod:`heterodyne.core.parameters`) with covariance Cov_q (p, p) (unit_i * unit_j), the ``matrix``
of the ``covariance`` block of its nlsq.json. With W_q = Cov_q^-1 the precision-weighted mean and
its covariance are

    theta_bar = (sum_q W_q)^-1 sum_q W_q theta_q,      Cov(theta_bar) = (sum_q W_q)^-1.

Test of q-independence. Under H0 (theta_q ~ N(theta, Cov_q) independently, the same theta at every
q, Cov_q known)

    chi2 = sum_q (theta_q - theta_bar)^T W_q (theta_q - theta_bar)   (dimensionless)

follows a chi-square distribution with p (n_q - 1) degrees of freedom; the p-value is
P(X >= chi2). The joint test uses all p parameters with their full covariances; the
per-parameter test of parameter j is the same test with p = 1 and the marginal variances
(Cov_q)_jj, so its mean is the inverse-variance mean of that parameter alone and its degrees of
freedom n_q - 1.

Holm's step-down procedure over the m per-parameter tests (family-wise error rate <= alpha under
any dependence between the tests): sort the p-values p_(1) <= ... <= p_(m) and reject H_(1), ...,
H_(k-1) where k is the first index with p_(k) > alpha / (m - k + 1). Equivalently the adjusted
p-values p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)) are compared with alpha: a parameter is
``significant`` (depends on q) when p~ <= alpha.

All computations are float64. The statistics accept leading batch dimensions (theta (..., n_q, p),
Cov (..., n_q, p, p)) so many synthetic data sets can be tested at once.
"""

import numpy as np
from scipy import stats

from heterodyne.core.parameters import FRACTION_NAMES, INDEX, PARAMETER_NAMES, PARAMETERS

#: the parameters the model makes independent of q (canonical order)
Q_INDEPENDENT = tuple(name for name in PARAMETER_NAMES if name not in FRACTION_NAMES)
FRACTION_REASON = "sample fraction: may vary with q, not part of the q-independence test"


def _scales(cov):
    """(..., p) positive scales s = sqrt(mean_q (Cov_q)_jj), in each parameter's unit: the
    statistics are computed for theta / s, which keeps the matrices well conditioned when the
    parameters' units differ by orders of magnitude."""
    return np.sqrt(np.mean(np.diagonal(cov, axis1=-2, axis2=-1), axis=-2))


def weighted_mean(theta, cov):
    """Precision-weighted mean theta_bar (..., p) and its covariance (sum_q Cov_q^-1)^-1
    (..., p, p) from theta (..., n_q, p) and Cov (..., n_q, p, p); units those of theta and Cov."""
    theta = np.asarray(theta, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    s = _scales(cov)
    z = theta / s[..., None, :]
    precision = np.linalg.inv(cov / (s[..., None, :, None] * s[..., None, None, :]))
    cov_bar_z = np.linalg.inv(precision.sum(axis=-3))
    mean_z = np.einsum("...ij,...j->...i", cov_bar_z, np.einsum("...qij,...qj->...i", precision, z))
    return mean_z * s, cov_bar_z * s[..., :, None] * s[..., None, :]


def chi2_statistic(theta, cov, theta_bar):
    """chi2 = sum_q (theta_q - theta_bar)^T Cov_q^-1 (theta_q - theta_bar) (...,), dimensionless."""
    theta = np.asarray(theta, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    s = _scales(cov)
    r = (theta - np.asarray(theta_bar, dtype=np.float64)[..., None, :]) / s[..., None, :]
    cov_z = cov / (s[..., None, :, None] * s[..., None, None, :])
    return np.einsum("...qi,...qi->...", r, np.linalg.solve(cov_z, r[..., None])[..., 0])


def joint_test(theta, cov):
    """(chi2 (...,), dof, p-value (...,)) of q-independence of all p parameters together;
    dof = p (n_q - 1)."""
    theta = np.asarray(theta, dtype=np.float64)
    n_q, p = theta.shape[-2:]
    if n_q < 2:
        raise ValueError(f"the cross-q test needs at least 2 q bins, got {n_q}")
    theta_bar, _ = weighted_mean(theta, cov)
    chi2 = chi2_statistic(theta, cov, theta_bar)
    dof = p * (n_q - 1)
    return chi2, dof, stats.chi2.sf(chi2, dof)


def marginal_tests(theta, cov):
    """(chi2 (..., p), dof, p-values (..., p)) of the per-parameter tests: each parameter alone
    (p = 1) with its marginal variances (Cov_q)_jj; dof = n_q - 1."""
    theta = np.asarray(theta, dtype=np.float64)
    variances = np.diagonal(np.asarray(cov, dtype=np.float64), axis1=-2, axis2=-1)  # (..., n_q, p)
    n_q = theta.shape[-2]
    if n_q < 2:
        raise ValueError(f"the cross-q test needs at least 2 q bins, got {n_q}")
    weights = 1.0 / variances
    mean = (weights * theta).sum(axis=-2) / weights.sum(axis=-2)
    chi2 = (weights * (theta - mean[..., None, :]) ** 2).sum(axis=-2)
    dof = n_q - 1
    return chi2, dof, stats.chi2.sf(chi2, dof)


def holm(p_values, alpha=0.05):
    """Holm's step-down correction over the last axis of ``p_values`` (..., m): the adjusted
    p-values p~ (..., m) (same order as the input; p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))
    over the sorted p-values) and the ``significant`` flags p~ <= alpha."""
    p_values = np.asarray(p_values, dtype=np.float64)
    m = p_values.shape[-1]
    order = np.argsort(p_values, axis=-1, kind="stable")
    ranked = np.take_along_axis(p_values, order, axis=-1)
    ranked = np.minimum(1.0, (m - np.arange(m)) * ranked)
    ranked = np.maximum.accumulate(ranked, axis=-1)
    adjusted = np.empty_like(ranked)
    np.put_along_axis(adjusted, order, ranked, axis=-1)
    return adjusted, adjusted <= alpha


def _q_label(q):
    return f"q = {q:g} 1/A"


def _free_names(record):
    return {name for name, entry in record["parameters"].items() if not entry.get("fixed", False)}


def tested_names(records):
    """The q-independent parameters free in every record, in canonical order."""
    free = set.intersection(*(_free_names(r) for r in records))
    return [name for name in Q_INDEPENDENT if name in free]


def left_out(records, q):
    """[{name, reason}] of the parameters not in the test: the fractions, and the q-independent
    parameters fixed in at least one record (the reason names those q, or says "every fit")."""
    out = [{"name": name, "reason": FRACTION_REASON} for name in FRACTION_NAMES]
    for name in Q_INDEPENDENT:
        fixed_at = [qk for qk, r in zip(q, records, strict=True) if name not in _free_names(r)]
        if len(fixed_at) == len(records):
            out.append({"name": name, "reason": "fixed in every fit"})
        elif fixed_at:
            where = ", ".join(_q_label(qk) for qk in fixed_at)
            out.append({"name": name, "reason": f"fixed in the fit at {where}"})
    return out


def _record_covariance(record, names, q):
    """Cov (p, p) of ``names`` from one record's ``covariance.matrix``; ValueError naming the
    parameter and q when the block, the parameter or a finite value is missing."""
    block = record.get("covariance")
    if not block or "matrix" not in block or "names" not in block:
        raise ValueError(f"nlsq record at {_q_label(q)} has no covariance block; needed for {names[0]}")
    for name in names:
        if name not in block["names"]:
            raise ValueError(f"covariance of {name} missing from the nlsq record at {_q_label(q)}")
    at = [block["names"].index(name) for name in names]
    matrix = np.array([[np.nan if x is None else x for x in row] for row in block["matrix"]], dtype=np.float64)
    cov = matrix[np.ix_(at, at)]
    bad = [name for k, name in enumerate(names) if not np.all(np.isfinite(cov[k]))]
    if bad:
        raise ValueError(f"covariance of {bad[0]} is not finite in the nlsq record at {_q_label(q)}")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"covariance of {', '.join(names)} is not positive definite in the nlsq record at {_q_label(q)}"
        ) from None
    return cov


def _record_values(record, names, q):
    values = np.array(
        [np.nan if record["parameters"][n]["value"] is None else record["parameters"][n]["value"] for n in names],
        dtype=np.float64,
    )
    bad = [name for name, v in zip(names, values, strict=True) if not np.isfinite(v)]
    if bad:
        raise ValueError(f"value of {bad[0]} is not finite in the nlsq record at {_q_label(q)}")
    return values


def _usable_at(record, name):
    """True when ``record`` has a finite value and a finite positive variance of ``name``."""
    value = record["parameters"][name]["value"]
    block = record.get("covariance") or {}
    if value is None or not np.isfinite(value) or name not in block.get("names", ()):
        return False
    k = block["names"].index(name)
    try:
        variance = block["matrix"][k][k]
    except (IndexError, KeyError, TypeError):
        return False
    return variance is not None and np.isfinite(variance) and variance > 0


def usable_names(records, q):
    """(names, left) : the :func:`tested_names` with a finite value and variance in every record,
    and [{name, reason}] of those dropped because some fit did not determine them (NaN standard
    error, written as null), naming the q."""
    names, left = [], []
    for name in tested_names(records):
        bad = [qk for qk, r in zip(q, records, strict=True) if not _usable_at(r, name)]
        if bad:
            where = ", ".join(_q_label(qk) for qk in bad)
            left.append({"name": name, "reason": f"no finite estimate or standard error in the fit at {where}"})
        else:
            names.append(name)
    return names, left


def extract(records, q, names=None):
    """(names, theta (n_q, p), Cov (n_q, p, p)) of the q-independent parameters free in every one
    of the nlsq.json ``records`` (dicts), one per q bin, ``q`` (1/A) in the same order; ``names``
    (canonical order) restricts them to a subset."""
    if len(records) != len(q):
        raise ValueError(f"{len(records)} nlsq records for {len(q)} q values")
    names = tested_names(records) if names is None else list(names)
    if not names:
        raise ValueError("no q-independent parameter is free in every nlsq record")
    theta = np.stack([_record_values(r, names, qk) for r, qk in zip(records, q, strict=True)])
    cov = np.stack([_record_covariance(r, names, qk) for r, qk in zip(records, q, strict=True)])
    return names, theta, cov


def summary(q, names, theta, cov, alpha=0.05, excluded=()):
    """The cross_q.json dict: q (1/A); per parameter its unit, the precision-weighted mean (joint,
    full covariances) and its se (unit of the parameter), the inverse-variance mean of the
    parameter alone and its se (``marginal_mean``, ``marginal_se``: the mean of its per-parameter
    test), the per-parameter chi2, dof, p-value,
    Holm-adjusted p-value and ``significant``; the joint chi2, dof, p and ``significant``
    (p <= alpha); ``left_out`` = ``excluded`` ([{name, reason}])."""
    mean, cov_bar = weighted_mean(theta, cov)
    se = np.sqrt(np.diagonal(cov_bar))
    variances = np.diagonal(np.asarray(cov, dtype=np.float64), axis1=-2, axis2=-1)
    marginal_se = 1.0 / np.sqrt(np.sum(1.0 / variances, axis=0))
    marginal_mean = np.sum(np.asarray(theta, dtype=np.float64) / variances, axis=0) * marginal_se**2
    chi2_j, dof_j, p_j = marginal_tests(theta, cov)
    adjusted, significant = holm(p_j, alpha)
    chi2, dof, p = joint_test(theta, cov)
    parameters = {
        name: {
            "unit": PARAMETERS[INDEX[name]].unit,
            "mean": float(mean[k]),
            "se": float(se[k]),
            "marginal_mean": float(marginal_mean[k]),
            "marginal_se": float(marginal_se[k]),
            "chi2": float(chi2_j[k]),
            "dof": int(dof_j),
            "p": float(p_j[k]),
            "p_holm": float(adjusted[k]),
            "significant": bool(significant[k]),
        }
        for k, name in enumerate(names)
    }
    return {
        "q": [float(x) for x in q],
        "q_unit": "1/A",
        "alpha": float(alpha),
        "parameters": parameters,
        "joint": {
            "names": list(names),
            "chi2": float(chi2),
            "dof": int(dof),
            "p": float(p),
            "significant": bool(p <= alpha),
        },
        "left_out": list(excluded),
    }


def cross_q_summary(records, q, alpha=0.05):
    """:func:`summary` straight from the nlsq.json ``records`` at ``q`` (1/A)."""
    names, theta, cov = extract(records, q)
    return summary(q, names, theta, cov, alpha, left_out(records, q))


def q_dependent(result):
    """The verdict of a :func:`summary` dict: True when some parameter is significant after Holm's
    correction or the joint test rejects (p <= alpha)."""
    return bool(result["joint"]["significant"] or any(entry["significant"] for entry in result["parameters"].values()))
