"""Joint multi-q NLSQ fit vs separate per-q fits: wall time at a realistic size.

Run: .venv/bin/python benchmarks/joint_q.py [--n 180] [--memory-mb 512]

Data: the heterodyne model at a known truth (transport, velocity and phi0 shared; f0 = 0.35 at
q = 0.007 1/A, 0.45 at q = 0.01 1/A; f1 = 0.05 /s at both) over 10 s, plus Gaussian noise
sigma = 0.01; bins: q = 0.007 1/A with angles 30, 90 deg and q = 0.01 1/A with 0, 45, 90, 135 deg.
Free: D0, alpha of both components, v0, beta, phi0 (shared) and f0, f1 (per q in the joint fit);
start: every free parameter 20 % off the truth (alternating sign).

The separate fits (:func:`heterodyne.fit.joint_fit.fit_joint`, one per bin) and the joint fit
(:func:`heterodyne.fit.joint_q.fit_joint_q`) each run in a fresh Python process with an empty JAX
compilation cache: "first" is the first call (with every compilation), "warm" the same fit
repeated in that process (compiled code reused). For the separate fits both are the sums over the
bins.
"""

import argparse
import json
import time

import numpy as np
from problems import FIXED, TRUTH, nlsq_settings, noisy_dataset, perturbed_start, run_child, time_grid

BINS = (("q0.007", 0.007, (30.0, 90.0), 0.35), ("q0.01", 0.01, (0.0, 45.0, 90.0, 135.0), 0.45))
SIGMA = 0.01


def _problems(n):
    from heterodyne.core.jax_backend import compute_c2_heterodyne_multiphi
    from heterodyne.core.parameters import as_vector
    from heterodyne.fit.joint_q import QBinProblem
    from heterodyne.fit.problem import build_problem

    dt, t = time_grid(n)
    bins = []
    for k, (folder, q, phi, f0) in enumerate(BINS):
        m = len(phi)
        clean = np.asarray(
            compute_c2_heterodyne_multiphi(
                as_vector(dict(TRUTH, f0=f0)), t, q, dt, np.array(phi), np.full(m, 0.3), np.ones(m)
            )
        )
        dataset, weights = noisy_dataset(clean, q, phi, SIGMA, seed=k)
        bins.append(QBinProblem(folder, q, build_problem(dataset, weights), None))
    return bins


def child(mode, n, memory_mb):
    """Time the fits of ``mode`` ("separate" or "joint") twice; returns a result row."""
    from heterodyne.fit.joint_fit import fit_joint
    from heterodyne.fit.joint_q import fit_joint_q
    from heterodyne.jax_config import configure_jax

    configure_jax()
    bins, settings = _problems(n), nlsq_settings(perturbed_start(0.2), FIXED, memory_mb)
    walls, fits = [], []
    for _ in range(2):
        began = time.perf_counter()
        if mode == "joint":
            fits = [fit_joint_q(bins, settings)]
        else:
            fits = [fit_joint(item.problem, settings) for item in bins]
        walls.append(time.perf_counter() - began)
    return {
        "mode": mode,
        "first_s": walls[0],
        "warm_s": walls[1],
        "iterations": [f.solver.n_iterations for f in fits],
        "nfev": [f.solver.n_function_evals for f in fits],
        "reduced_chi2": [round(f.reduced_chi2, 4) for f in fits],
        "converged": all(f.solver.converged for f in fits),
        "chunked": any(f.solver.chunked for f in fits),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=180, help="frames N of every bin")
    parser.add_argument("--memory-mb", type=float, default=512.0, help="nlsq.jacobian_memory_mb")
    parser.add_argument("--child", choices=("separate", "joint"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.memory_mb)))
        return
    angles = "+".join(str(len(phi)) for *_, phi, _ in BINS)
    print(
        f"{'N':>4} {'q bins':>6} {'angles':>6} {'fit':>9} {'first [s]':>9} {'warm [s]':>8} {'iter':>7} "
        f"{'nfev':>7} {'chi2/dof':>16} {'conv':>5} {'chunked':>7}"
    )
    for mode in ("separate", "joint"):
        row = run_child(__file__, ["--child", mode, "--n", str(args.n), "--memory-mb", str(args.memory_mb)])
        print(
            f"{args.n:>4} {len(BINS):>6} {angles:>6} {mode:>9} {row['first_s']:>9.1f} {row['warm_s']:>8.1f} "
            f"{'+'.join(map(str, row['iterations'])):>7} {'+'.join(map(str, row['nfev'])):>7} "
            f"{'/'.join(map(str, row['reduced_chi2'])):>16} {row['converged']!s:>5} {row['chunked']!s:>7}"
        )


if __name__ == "__main__":
    main()
