"""Kernel speed: meshgrid c2, pooled c2, the residual Jacobian and the CMC likelihood (prints tables).

Run: taskset -c 1 .venv/bin/python benchmarks/kernel.py   (one core; times are the best of several
calls after warm-up; "direct" is a plain broadcast of the formula, for comparison with the blocked
meshgrid path). The last table is the value and gradient (with respect to params) of a scalar
sum_a g_a . (S1, S2, S3)_a of a CMC shard's per-angle sums over pooled points (the CMC likelihood
depends on the physics only through them): "reference" is autodiff through
heterodyne.core.c2.c2_pooled (contrast 1, offset 0) and a segment sum, "pooled_sums" the
hand-written gradient of heterodyne.core.pooled_likelihood. Shards are random subsets of the upper
triangles of 3 angles, in pooled order (angle, then row-major), as heterodyne.cmc.pooling makes
them. That table gives the best process CPU time of alternating calls: on one core it is the work
done, and unlike wall time it does not count the time other processes hold the core.
"""

import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the parameters live with the tests

from physics_fixtures import SMOOTH  # noqa: E402

from heterodyne.core import jax_backend as jb  # noqa: E402
from heterodyne.core import physics  # noqa: E402
from heterodyne.core.c2 import _direct_bracket, c2_map, c2_pooled  # noqa: E402
from heterodyne.core.parameters import as_vector  # noqa: E402
from heterodyne.core.pooled_likelihood import pooled_sums, prepare_points  # noqa: E402
from heterodyne.jax_config import configure_jax  # noqa: E402

#: NumPy float64, so JAX takes it in float64 once main() has called configure_jax()
PARAMS = np.asarray(as_vector(SMOOTH), dtype=np.float64)
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
    c_ref, c_s, c_v, x_s = physics.grid_quantities(params, t, DT)
    pf = physics.phase_factor(Q, 30.0, params[13])
    return 1.0 + 0.2 * _direct_bracket(Q, pf, c_ref, c_s, c_v, x_s)


def best_cpu_times(calls, rounds):
    """Best process CPU time (s) of each (fn, args) in ``calls`` after one warm-up call each,
    timed in turn for ``rounds`` rounds (so a change of machine load hits all of them alike)."""
    for fn, args in calls:
        jax.block_until_ready(fn(*args))
    best = [np.inf] * len(calls)
    for _ in range(rounds):
        for k, (fn, args) in enumerate(calls):
            start = time.process_time()
            jax.block_until_ready(fn(*args))
            best[k] = min(best[k], time.process_time() - start)
    return best


#: cotangent of the (3 angles, 3 sums) table: the scalar whose value and gradient are timed
COTANGENT = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3)))


def reference_sums(params, t, phi, points, c2, weight):
    phi_index, idx1, idx2 = points
    bracket = c2_pooled(params, t, Q, DT, phi, phi_index, idx1, idx2, jnp.ones(3), jnp.zeros(3))
    wb = weight * bracket
    sums = jnp.stack([jax.ops.segment_sum(x, phi_index, 3) for x in (wb, wb * bracket, wb * c2)], axis=-1)
    return jnp.sum(COTANGENT * sums)


def fast_sums(params, t, phi, points, c2, weight):
    return jnp.sum(COTANGENT * pooled_sums(params, t, Q, DT, phi, points, c2, weight))


def likelihood_rows():
    """(case, n_points, reference s, pooled_sums s) of the shard value + gradient."""
    reference = jax.jit(jax.value_and_grad(reference_sums))
    fast = jax.jit(jax.value_and_grad(fast_sums))
    phi = jnp.array([0.0, 45.0, 90.0])
    rng = np.random.default_rng(0)
    rows = []
    for n, n_points in ((180, 24_000), (1000, 100_000), (1000, 500_000), (1000, 1_498_500)):
        i, j = np.triu_indices(n, k=1)
        a, i, j = np.repeat(np.arange(3), len(i)), np.tile(i, 3), np.tile(j, 3)
        keep = np.sort(rng.permutation(len(i))[:n_points])
        phi_index, idx1, idx2 = a[keep], i[keep], j[keep]
        t = jnp.asarray(0.5 + DT * np.arange(n))
        c2, weight = jnp.asarray(rng.normal(1.1, 0.01, n_points)), jnp.full(n_points, 1e4)
        # indices on the device once, as a sampler holds them
        reference_points = tuple(jnp.asarray(x, dtype=jnp.int32) for x in (phi_index, idx1, idx2))
        points = jax.device_put(prepare_points(phi_index, idx1, idx2, n, 3))
        before, after = best_cpu_times(
            [(reference, (PARAMS, t, phi, reference_points, c2, weight)), (fast, (PARAMS, t, phi, points, c2, weight))],
            rounds=max(5, int(4e6 // n_points)),
        )
        rows.append((f"N={n}, 3 angles", n_points, before, after))
    return rows


def main():
    configure_jax()
    meshgrid = jax.jit(lambda p, t: c2_map(p, t, Q, DT, 30.0, 0.2, 1.0))
    rows = []
    for n in (500, 1000, 2000, 4000):
        t = jnp.asarray(0.5 + DT * np.arange(n))
        rows.append((f"meshgrid c2 N={n}", best_time(meshgrid, PARAMS, t), best_time(direct_c2, PARAMS, t)))
    pooled = jax.jit(
        lambda p, t, i, j, k: c2_pooled(
            p, t, Q, DT, jnp.array([0.0, 45.0, 90.0]), k, i, j, jnp.array([0.2, 0.2, 0.2]), jnp.ones(3)
        )
    )
    rng = np.random.default_rng(0)
    t = jnp.asarray(0.5 + DT * np.arange(1000))
    for n_points in (100_000, 1_000_000):
        i, j, k = rng.integers(0, 1000, n_points), rng.integers(0, 1000, n_points), rng.integers(0, 3, n_points)
        rows.append((f"pooled c2 {n_points:.0e} points", best_time(pooled, PARAMS, t, i, j, k), None))
    for n in (500, 1000):
        t = jnp.asarray(0.5 + DT * np.arange(n))
        data = c2_map(PARAMS, t, Q, DT, 30.0, 0.2, 1.0)
        rows.append(
            (
                f"residual Jacobian N={n}",
                best_time(jb.compute_residuals_jacobian, PARAMS, t, Q, DT, 30.0, data, None, 0.2, 1.0, repeats=3),
                None,
            )
        )
    print(f"{'case':<32}{'time [ms]':>12}{'direct [ms]':>14}")
    for name, seconds, direct in rows:
        direct_text = f"{direct * 1e3:14.2f}" if direct is not None else f"{'':>14}"
        print(f"{name:<32}{seconds * 1e3:12.2f}{direct_text}")
    print()
    print(
        f"{'pooled sums value+grad':<24}{'points':>10}{'reference [ns/pt]':>20}{'pooled_sums [ns/pt]':>21}"
        f"{'speed-up':>10}"
    )
    for name, n_points, before, after in likelihood_rows():
        print(
            f"{name:<24}{n_points:>10}{before / n_points * 1e9:20.1f}{after / n_points * 1e9:21.1f}"
            f"{before / after:10.1f}"
        )
    print(f"device: {jax.devices()[0]}, float64: {jnp.zeros(1).dtype == jnp.float64}")


if __name__ == "__main__":
    main()
