"""Simulated in-memory datasets with known truth for the NLSQ tests.

Truth (units as in :mod:`heterodyne.core.parameters`), q = 0.01 1/A, t_k = (k + 1) dt:
D0_ref = 1000 A^2/s (q^2 D0 = 0.1 /s), D0_sample = 3000 (0.3 /s), alpha_ref = 0.2,
alpha_sample = -0.3, v0 = 100 A/s (phase rate q v0 = 1 rad/s), beta = 0.4, f0 = 0.4,
f1 = 0.05 /s, phi0 = 10 deg, contrast 0.3 - 0.34, offset 1.0 - 1.02.

Why this truth is well identified: over T = N dt = 10-15 s both decays fall by e^-1 to e^-4 and
the heterodyne cosine completes 1-2 cycles, so D0, alpha (curvature of the decay in t) and v0,
beta (chirp of the oscillation) are each seen; x_s = 0.4 e^{0.05 t} stays inside (0, 1) (no clip)
and changes by ~e^0.5, fixing f0 and f1; phi0 is fixed by the different cos(phi + phi0) at the
three angles. The parameters that are exactly degenerate with these for this truth are fixed at
their truth: D_offset_ref, D_offset_sample, v_offset (offsets of rates already described by
power laws with free amplitude, indistinguishable when alpha, beta ~ 0) and f2, f3
(f0 e^{f1 (t - f2)} makes f2 redundant with f0; f3 with f0 at small f1 t).
"""

import numpy as np

from heterodyne.core.jax_backend import compute_c2_heterodyne
from heterodyne.core.parameters import PARAMETER_NAMES, as_vector
from heterodyne.data.dataset import Dataset
from heterodyne.weighting.weights_file import AngleWeights

Q = 0.01
TRUTH = {
    "D0_ref": 1000.0,
    "alpha_ref": 0.2,
    "D_offset_ref": 0.0,
    "D0_sample": 3000.0,
    "alpha_sample": -0.3,
    "D_offset_sample": 0.0,
    "v0": 100.0,
    "beta": 0.4,
    "v_offset": 0.0,
    "f0": 0.4,
    "f1": 0.05,
    "f2": 0.0,
    "f3": 0.0,
    "phi0": 10.0,
}
FIXED = ["D_offset_ref", "D_offset_sample", "v_offset", "f2", "f3"]
FREE = [name for name in PARAMETER_NAMES if name not in FIXED]
CONTRASTS = (0.30, 0.32, 0.34)
OFFSETS = (1.00, 1.01, 1.02)


def noiseless_c2(phi, n, duration=10.0, contrasts=CONTRASTS, offsets=OFFSETS):
    """(n_phi, n, n) model c2 of TRUTH on t_k = (k + 1) dt, dt = duration / n."""
    dt = duration / n
    t = dt * np.arange(1, n + 1)
    theta = as_vector(TRUTH)
    return np.stack(
        [np.asarray(compute_c2_heterodyne(theta, t, Q, dt, p, contrasts[a], offsets[a])) for a, p in enumerate(phi)]
    )


def simulated_dataset(phi, n, sigma, seed, duration=10.0, clean=None):
    """Dataset (symmetric noisy c2 = ``clean`` + noise, all valid; ``clean`` defaults to
    :func:`noiseless_c2`) and AngleWeights with the true sigma.

    Noise: independent N(0, sigma^2) on each pair i < j, mirrored to j > i."""
    if clean is None:
        clean = noiseless_c2(phi, n, duration)
    dt = duration / n
    t = dt * np.arange(1, n + 1)
    rng = np.random.default_rng(seed)
    noise = np.triu(rng.normal(0.0, sigma, clean.shape), k=1)
    c2 = clean + noise + np.swapaxes(noise, 1, 2)
    phi = np.asarray(phi, dtype=np.float64)
    dataset = Dataset(
        c2=c2,
        valid=np.ones(c2.shape, dtype=bool),
        t=t,
        phi=phi,
        dt=dt,
        q=Q,
        time_origin=dt,
        source_path="simulated",
        source_sha256="",
        selection={},
    )
    weights = AngleWeights(
        phi=phi,
        sigma=np.full(len(phi), sigma),
        contrast=np.array(CONTRASTS[: len(phi)]),
        offset=np.array(OFFSETS[: len(phi)]),
        method="uniform",
    )
    return dataset, weights


def nlsq_section(initial=None, **overrides):
    """A complete ``nlsq`` config section (as after schema defaults) for the tests."""
    section = {
        "initial": dict(initial if initial is not None else TRUTH),
        "fixed": list(FIXED),
        "bounds": {},
        "scaling": "per_angle",
        "multistart": {"n_starts": 0, "seed": 0},
        "max_nfev": 200,
        "ftol": 1e-10,
        "xtol": 1e-10,
        "gtol": 1e-10,
        "jacobian_memory_mb": 256,
    }
    section.update(overrides)
    return section


def perturbed(truth, fraction, names, seed):
    """``truth`` with each of ``names`` multiplied by 1 +/- ``fraction`` (random sign)."""
    rng = np.random.default_rng(seed)
    start = dict(truth)
    for name in names:
        start[name] = float(truth[name] * (1.0 + fraction * rng.choice([-1.0, 1.0])))
    return start
