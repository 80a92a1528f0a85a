"""Simulated NLSQ fit problems the benchmarks build alike: the truth of tests/nlsq_fixtures.py on
t_k = (k + 1) dt over 10 s, noisy maps, fit settings, and a child process with an empty JAX cache."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the truth lives with the tests

from nlsq_fixtures import FIXED, TRUTH  # noqa: E402

from heterodyne.core.jax_backend import compute_c2_heterodyne  # noqa: E402
from heterodyne.core.parameters import as_vector  # noqa: E402
from heterodyne.data.dataset import Dataset  # noqa: E402
from heterodyne.fit.settings import settings_from_config  # noqa: E402
from heterodyne.weighting.weights_file import AngleWeights  # noqa: E402

DURATION = 10.0  # s
CONTRAST, OFFSET = 0.3, 1.0


def time_grid(n):
    """(dt [s], t [s]) of ``n`` frames over DURATION: dt = DURATION / n, t_k = (k + 1) dt."""
    dt = DURATION / n
    return dt, dt * np.arange(1, n + 1)


def model_c2(values, n, q, phi):
    """(n_phi, n, n) heterodyne c2 of ``values`` at q [1/A], angles ``phi`` [deg], CONTRAST and OFFSET."""
    dt, t = time_grid(n)
    theta = as_vector(values)
    return np.stack([np.asarray(compute_c2_heterodyne(theta, t, q, dt, p, CONTRAST, OFFSET)) for p in phi])


def noisy_dataset(clean, q, phi, sigma, seed, time_origin=0.0):
    """(Dataset, AngleWeights) of ``clean`` (n_phi, n, n) c2 plus independent N(0, sigma^2) noise on each pair
    i < j (mirrored to j > i; generator seed ``seed``), all valid; weights: the true sigma, CONTRAST and OFFSET."""
    phi = np.array(phi)
    dt, t = time_grid(clean.shape[-1])
    noise = np.triu(np.random.default_rng(seed).normal(0.0, sigma, clean.shape), k=1)
    c2 = clean + noise + np.swapaxes(noise, 1, 2)
    dataset = Dataset(c2=c2, valid=np.ones(c2.shape, bool), t=t, phi=phi, dt=dt, q=q, time_origin=time_origin)
    weights = AngleWeights(
        phi=phi,
        sigma=np.full(len(phi), sigma),
        contrast=np.full(len(phi), CONTRAST),
        offset=np.full(len(phi), OFFSET),
        method="uniform",
    )
    return dataset, weights


def perturbed_start(fraction):
    """TRUTH with its free parameters (not in FIXED) at (1 + fraction), (1 - fraction), ... times the truth."""
    free = [name for name in TRUTH if name not in FIXED]
    return dict(
        TRUTH, **{name: TRUTH[name] * (1 + fraction if k % 2 == 0 else 1 - fraction) for k, name in enumerate(free)}
    )


def nlsq_settings(initial, fixed, memory_mb, max_nfev=200, tol=1e-8):
    """Fit settings from ``initial`` with ``fixed`` held, no multistart, ftol = xtol = gtol = ``tol``."""
    return settings_from_config(
        {
            "initial": initial,
            "fixed": fixed,
            "bounds": {},
            "scaling": "per_angle",
            "multistart": {"n_starts": 0, "seed": 0},
            "max_nfev": max_nfev,
            "ftol": tol,
            "xtol": tol,
            "gtol": tol,
            "jacobian_memory_mb": memory_mb,
        }
    )


def run_child(script, args):
    """The JSON of the last stdout line of ``python script *args``, run in a fresh process with an empty
    JAX compilation cache (so its wall time includes every compilation)."""
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run(
            [sys.executable, script, *args],
            env=dict(os.environ, HETERODYNE_JAX_CACHE=cache),
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])
