"""Small simulated CMC problem with known truth, and an NLSQ record fitted to it.

Two angles, N = 64 frames, dt = 0.1 s, q = 0.01 1/A; c2 from ``compute_c2_heterodyne`` plus
Gaussian noise of known sigma on the upper triangle (mirrored, so maps stay symmetric). Free:
D0_sample, v0, f0 and per-angle contrast/offset; every other parameter is fixed at the truth. The
nlsq.json-like record comes from scipy.optimize.least_squares on the pairs i < j, with standard
errors sqrt(diag((J^T J)^-1)) of the sigma-weighted residuals.
"""

import numpy as np
import scipy.optimize

from heterodyne.core.jax_backend import compute_c2_heterodyne
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, PARAMETERS, as_vector
from heterodyne.data.dataset import Dataset
from heterodyne.weighting.weights_file import AngleWeights

TRUTH = {"D0_ref": 3000.0, "D0_sample": 1500.0, "v0": 150.0, "f0": 0.4}
FREE = ("D0_sample", "v0", "f0")
PHI = np.array([10.0, 70.0])
CONTRAST = np.array([0.30, 0.25])
OFFSET = np.array([1.00, 1.02])
SIGMA = np.array([0.004, 0.005])
N, DT, Q = 64, 0.1, 0.01
#: the true constant noise of each angle as weights (levels unused by the CMC)
WEIGHTS = AngleWeights(phi=PHI, sigma=SIGMA, contrast=CONTRAST, offset=OFFSET, method="robust")


def c2_maps(params, contrast, offset, t=None):
    """(n_phi, N, N) model maps at the test angles."""
    t = DT * (1 + np.arange(N)) if t is None else t
    return np.stack(
        [
            np.asarray(compute_c2_heterodyne(params, t, Q, DT, phi, c, o))
            for phi, c, o in zip(PHI, contrast, offset, strict=True)
        ]
    )


def simulated_dataset(seed=1):
    """Dataset with noise N(0, SIGMA[a]^2) on every element i < j (mirrored to j > i)."""
    rng = np.random.default_rng(seed)
    t = DT * (1 + np.arange(N))
    clean = c2_maps(as_vector(TRUTH), CONTRAST, OFFSET, t)
    upper = np.triu(rng.standard_normal(clean.shape), k=1) * SIGMA[:, None, None]
    c2 = clean + upper + np.transpose(upper, (0, 2, 1))
    return Dataset(c2=c2, valid=np.ones(c2.shape, bool), t=t, phi=PHI.copy(), dt=DT, q=Q)


def nlsq_record(dataset):
    """nlsq.json-like dict of a least-squares fit of FREE + contrast/offset to ``dataset``."""
    rows, cols = np.triu_indices(N, k=1)
    n_phi = len(PHI)
    base = as_vector(TRUTH)

    def unpack(x):
        params = base.copy()
        params[[INDEX[name] for name in FREE]] = x[: len(FREE)]
        return params, x[len(FREE) : len(FREE) + n_phi], x[len(FREE) + n_phi :]

    def residuals(x):
        model = c2_maps(*unpack(x), dataset.t)
        return ((model - dataset.c2)[:, rows, cols] / SIGMA[:, None]).ravel()

    x0 = np.concatenate([[TRUTH[name] * 1.05 for name in FREE], CONTRAST * 0.95, OFFSET + 0.003])
    x_scale = np.concatenate([[TRUTH[name] for name in FREE], np.ones(2 * n_phi)])
    fit = scipy.optimize.least_squares(residuals, x0, x_scale=x_scale, xtol=1e-12, ftol=1e-12)
    stderr = np.sqrt(np.diag(np.linalg.inv(fit.jac.T @ fit.jac)))
    params, contrast, offset = unpack(fit.x)
    free_stderr = dict(zip(FREE, stderr[: len(FREE)], strict=True))
    parameters = {
        p.name: {
            "value": float(params[k]),
            "stderr": free_stderr.get(p.name),
            "fixed": p.name not in FREE,
            "at_bound": False,
            "unit": p.unit,
        }
        for k, p in enumerate(PARAMETERS)
    }
    per_angle = np.sum(residuals(fit.x).reshape(n_phi, -1) ** 2, axis=1) / len(rows)
    names = list(FREE) + [f"{kind}_{a}" for kind in ("contrast", "offset") for a in range(n_phi)]
    covariance = np.linalg.inv(fit.jac.T @ fit.jac)
    return {
        "converged": bool(fit.success),
        "termination": fit.message,
        "parameters": parameters,
        "phi": PHI.tolist(),
        "contrast": contrast.tolist(),
        "contrast_stderr": stderr[len(FREE) : len(FREE) + n_phi].tolist(),
        "offset": offset.tolist(),
        "offset_stderr": stderr[len(FREE) + n_phi :].tolist(),
        "chi2": float(2 * fit.cost),
        "reduced_chi2": float(2 * fit.cost / (fit.fun.size - fit.x.size)),
        "reduced_chi2_per_angle": per_angle.tolist(),
        "covariance": {"names": names, "matrix": covariance.tolist(), "independent": covariance.tolist()},
        "provenance": {"step": "test"},
    }


def truth_of(name):
    """True value of a sampled quantity name (physics name, contrast_a or offset_a)."""
    if name in PARAMETER_NAMES:
        return as_vector(TRUTH)[INDEX[name]]
    kind, angle = name.rsplit("_", 1)
    return {"contrast": CONTRAST, "offset": OFFSET}[kind][int(angle)]
