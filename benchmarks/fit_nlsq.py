"""NLSQ fit speed: 3 angles (0, 45, 90 deg) at N = 200, 500, 1000 from one perturbed start.

Run: .venv/bin/python benchmarks/fit_nlsq.py [--sizes 200 500 1000] [--memory-mb 512]

Each size runs in a fresh Python process with an empty JAX compilation cache, so "wall" is end
to end including compilation: building the fit problem from an in-memory dataset, every
residual/Jacobian compilation, the TRF solve and the final covariance. Data: the heterodyne model
at a known truth plus Gaussian noise sigma = 0.01; start: every free parameter 30 % off the truth
(alternating sign). Targets (issue #4): N = 500 <= 30 s, N = 1000 <= 120 s.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

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
PHI = (0.0, 45.0, 90.0)
Q, DURATION, SIGMA = 0.01, 10.0, 0.01


def one_size(n, memory_mb):
    """Simulate, fit and return a result row (runs inside the child process)."""
    import time

    import numpy as np

    from heterodyne.core.jax_backend import compute_c2_heterodyne
    from heterodyne.core.parameters import as_vector
    from heterodyne.data.dataset import Dataset
    from heterodyne.fit.joint_fit import fit_joint
    from heterodyne.fit.problem import build_problem
    from heterodyne.fit.settings import settings_from_config
    from heterodyne.jax_config import configure_jax
    from heterodyne.weighting.weights_file import AngleWeights

    configure_jax()
    dt = DURATION / n
    t = dt * np.arange(1, n + 1)
    clean = np.stack([np.asarray(compute_c2_heterodyne(as_vector(TRUTH), t, Q, dt, p, 0.3, 1.0)) for p in PHI])
    noise = np.triu(np.random.default_rng(0).normal(0.0, SIGMA, clean.shape), k=1)
    dataset = Dataset(
        c2=clean + noise + np.swapaxes(noise, 1, 2),
        valid=np.ones(clean.shape, bool),
        t=t,
        phi=np.array(PHI),
        dt=dt,
        q=Q,
    )
    weights = AngleWeights(
        phi=np.array(PHI), sigma=np.full(3, SIGMA), contrast=np.full(3, 0.3), offset=np.ones(3), method="uniform"
    )
    free = [name for name in TRUTH if name not in FIXED]
    start = dict(TRUTH, **{name: TRUTH[name] * (1.3 if k % 2 == 0 else 0.7) for k, name in enumerate(free)})
    section = {
        "initial": start,
        "fixed": FIXED,
        "bounds": {},
        "scaling": "per_angle",
        "multistart": {"n_starts": 0, "seed": 0},
        "max_nfev": 200,
        "ftol": 1e-8,
        "xtol": 1e-8,
        "gtol": 1e-8,
        "jacobian_memory_mb": memory_mb,
    }
    began = time.perf_counter()
    fit = fit_joint(build_problem(dataset, weights), settings_from_config(section))
    wall = time.perf_counter() - began
    worst_z = max(abs(fit.theta[k] - TRUTH[name]) / fit.theta_stderr[k] for k, name in enumerate(TRUTH) if name in free)
    return {
        "n": n,
        "wall_s": wall,
        "iterations": fit.n_iterations,
        "nfev": fit.n_function_evals,
        "chi2": fit.chi2,
        "reduced_chi2": fit.reduced_chi2,
        "converged": fit.converged,
        "chunked": fit.chunked,
        "max_abs_z": worst_z,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 500, 1000])
    parser.add_argument("--memory-mb", type=float, default=512.0, help="nlsq.jacobian_memory_mb")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_size(args.child, args.memory_mb)))
        return
    print(
        f"{'N':>5} {'wall [s]':>9} {'iter':>5} {'nfev':>5} {'chi2':>14} {'chi2/dof':>9} "
        f"{'conv':>5} {'chunked':>7} {'max|z|':>7}"
    )
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, HETERODYNE_JAX_CACHE=cache)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n), "--memory-mb", str(args.memory_mb)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{row['n']:>5} {row['wall_s']:>9.1f} {row['iterations']:>5} {row['nfev']:>5} {row['chi2']:>14.6g} "
            f"{row['reduced_chi2']:>9.4f} {row['converged']!s:>5} {row['chunked']!s:>7} {row['max_abs_z']:>7.2f}"
        )


if __name__ == "__main__":
    main()
