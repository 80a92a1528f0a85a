"""Kernel speed: meshgrid c2, pooled c2 and the residual Jacobian (prints a table).

Run: .venv/bin/python benchmarks/kernel.py   (times are the best of several calls after warm-up;
"direct" is a plain broadcast of the formula, for comparison with the blocked meshgrid path).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

import heterodyne  # noqa: F401  (float64)
from heterodyne.core import jax_backend as jb
from heterodyne.core import physics_kernel as pk
from heterodyne.core.parameters import as_vector

PARAMS = jnp.asarray(as_vector(dict(D0_ref=600.0, alpha_ref=0.4, D_offset_ref=40.0, D0_sample=2500.0,
                                    alpha_sample=-0.3, D_offset_sample=100.0, v0=30.0, beta=0.5,
                                    v_offset=5.0, f0=0.3, f1=0.05, f2=3.0, f3=0.1, phi0=12.0)))
Q, DT = 0.012, 0.1


def best_time(fn, *args, repeats=7):
    """Best wall time (s) of ``repeats`` calls after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


@jax.jit
def direct_c2(params, t):
    c_ref, c_s, c_v, x_s = pk.grid_quantities(params, t, DT)
    pf = pk.phase_factor(Q, 30.0, params[13])
    return 1.0 + 0.2 * pk._direct_bracket(Q, pf, c_ref, c_s, c_v, x_s)


def main():
    meshgrid = jax.jit(lambda p, t: jb.compute_c2_heterodyne(p, t, Q, DT, 30.0, 0.2, 1.0))
    rows = []
    for n in (500, 1000, 2000, 4000):
        t = jnp.asarray(0.5 + DT * np.arange(n))
        rows.append((f"meshgrid c2 N={n}", best_time(meshgrid, PARAMS, t), best_time(direct_c2, PARAMS, t)))
    pooled = jax.jit(lambda p, t, i, j, k: jb.compute_c2_heterodyne_pooled(
        p, t, Q, DT, i, j, k, jnp.array([0.0, 45.0, 90.0]), jnp.array([0.2, 0.2, 0.2]), jnp.ones(3)))
    rng = np.random.default_rng(0)
    t = jnp.asarray(0.5 + DT * np.arange(1000))
    for n_points in (100_000, 1_000_000):
        i, j, k = rng.integers(0, 1000, n_points), rng.integers(0, 1000, n_points), rng.integers(0, 3, n_points)
        rows.append((f"pooled c2 {n_points:.0e} points", best_time(pooled, PARAMS, t, i, j, k), None))
    for n in (500, 1000):
        t = jnp.asarray(0.5 + DT * np.arange(n))
        data = jb.compute_c2_heterodyne(PARAMS, t, Q, DT, 30.0, 0.2, 1.0)
        rows.append((f"residual Jacobian N={n}", best_time(
            jb.compute_residuals_jacobian, PARAMS, t, Q, DT, 30.0, data, None, 0.2, 1.0, repeats=3), None))
    print(f"{'case':<32}{'time [ms]':>12}{'direct [ms]':>14}")
    for name, seconds, direct in rows:
        direct_text = f"{direct * 1e3:14.2f}" if direct is not None else f"{'':>14}"
        print(f"{name:<32}{seconds * 1e3:12.2f}{direct_text}")
    print(f"device: {jax.devices()[0]}, float64: {jnp.zeros(1).dtype == jnp.float64}")


if __name__ == "__main__":
    main()
