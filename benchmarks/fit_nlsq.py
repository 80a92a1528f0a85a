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
import time

from problems import FIXED, TRUTH, model_c2, nlsq_settings, noisy_dataset, perturbed_start, run_child

PHI = (0.0, 45.0, 90.0)
Q, SIGMA = 0.01, 0.01


def one_size(n, memory_mb):
    """Simulate, fit and return a result row (runs inside the child process)."""
    from heterodyne.fit.joint_fit import fit_joint
    from heterodyne.fit.problem import build_problem
    from heterodyne.jax_config import configure_jax

    configure_jax()
    dataset, weights = noisy_dataset(model_c2(TRUTH, n, Q, PHI), Q, PHI, SIGMA, seed=0)
    began = time.perf_counter()
    fit = fit_joint(build_problem(dataset, weights), nlsq_settings(perturbed_start(0.3), FIXED, memory_mb))
    wall = time.perf_counter() - began
    worst_z = max(
        abs(fit.theta[k] - TRUTH[name]) / fit.theta_stderr[k] for k, name in enumerate(TRUTH) if name not in FIXED
    )
    return {
        "n": n,
        "wall_s": wall,
        "iterations": fit.solver.n_iterations,
        "nfev": fit.solver.n_function_evals,
        "chi2": fit.chi2,
        "reduced_chi2": fit.reduced_chi2,
        "converged": fit.solver.converged,
        "chunked": fit.solver.chunked,
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
        row = run_child(__file__, ["--child", str(n), "--memory-mb", str(args.memory_mb)])
        print(
            f"{row['n']:>5} {row['wall_s']:>9.1f} {row['iterations']:>5} {row['nfev']:>5} {row['chi2']:>14.6g} "
            f"{row['reduced_chi2']:>9.4f} {row['converged']!s:>5} {row['chunked']!s:>7} {row['max_abs_z']:>7.2f}"
        )


if __name__ == "__main__":
    main()
