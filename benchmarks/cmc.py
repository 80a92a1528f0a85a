"""CMC speed on the demo-sized problem: pooled-kernel cost per gradient, time and ESS/s per shard;
or (--shard-cost) the cost of one shard against its number of points; or (--consensus) the
combined posterior of K shards against full-data NUTS.

Run: .venv/bin/python benchmarks/cmc.py [--frames 180] [--shards 4] [--warmup 150] [--samples 300]
     [--chains 2] [--adapt-mass]
     taskset -c 1 .venv/bin/python benchmarks/cmc.py --shard-cost     (single-core numbers, ~5 min)
     .venv/bin/python benchmarks/cmc.py --consensus [--frames 180]     (K = 1, 2, 4, 16; ~20 min)

The problem mirrors the demo (4 angles 0/30/60/90 deg, q = 0.01 1/A, dt = 0.1 s, N frames, noise
0.010-0.020); free: D0_ref, D0_sample, v0, f0 and per-angle contrast/offset (the rest fixed). The
"NLSQ result" is the truth moved by one draw of its Gauss-Newton standard errors
sqrt(diag((J^T J)^-1)), J the Jacobian of the sigma-weighted residuals at the truth. Shards run one
after another in this process (the first one pays the compilation); the gradient row is the best
of 20 calls of the jitted value-and-gradient of one shard's potential energy.

--shard-cost: the first 3 angles, N = 180, 500, 1000, and for each N the K that
``shard_count`` gives for points_per_shard = 25k, 100k, 250k, 500k (each K once). Per shard
(shard 0, padded to the largest shard): value + gradient time t_g of its log density (best of 20,
ms and ns per point), the shard geometry (mode and whitening, ``shard_geometry``: a second call,
and the first call, which also compiles it; the persistent compilation cache is off here), and
the projected sampling time chains x (warm-up + draws) x L x t_g for 4 x 600 x L, with L = 15
leapfrog steps per iteration assumed (printed; the real L depends on the posterior: NUTS logs its
mean per shard).

--consensus: the first 3 angles, N frames; the combined posterior of K = 2, 4, 16 shards
against one full-data NUTS run (K = 1) of the same data and NLSQ record, at the config's default
sampler settings: the worst |mean_K - mean_1| / sd_1 over the sampled quantities and the range of
sd_K / sd_1 (issue 10's limits: 0.2 and 15 %).
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.cmc.combine import combine_shards, posterior_summary
from heterodyne.cmc.diagnostics import shard_diagnostics
from heterodyne.cmc.model import build_model_spec, log_density
from heterodyne.cmc.pooling import max_shard_size, pooled_points, shard_count, shard_labels
from heterodyne.cmc.sampling import NutsSettings, run_shard, shard_data, shard_geometry, start_position
from heterodyne.cmc.shards import sample_all_shards
from heterodyne.core.jax_backend import compute_c2_heterodyne_pooled
from heterodyne.core.parameters import INDEX, PARAMETERS, as_vector
from heterodyne.data.dataset import Dataset
from heterodyne.jax_config import configure_jax
from heterodyne.weighting.weights_file import AngleWeights

TRUTH = as_vector({"D0_ref": 2000.0, "D0_sample": 5000.0, "v0": 150.0, "f0": 0.5})
FREE = ("D0_ref", "D0_sample", "v0", "f0")
PHI = np.array([0.0, 30.0, 60.0, 90.0])
CONTRAST = np.array([0.20, 0.22, 0.18, 0.21])
OFFSET = np.array([1.0, 1.002, 0.998, 1.001])
SIGMA = np.array([0.010, 0.012, 0.015, 0.020])
Q, DT = 0.01, 0.1
PRIOR = {"default": {"kind": "truncated-normal", "width": 10.0, "width_unit": "stderr"}, "parameters": {}}

#: --consensus: the numbers of shards compared with the full-data run (K = 1)
CONSENSUS_SHARDS = (2, 4, 16)
#: --consensus: the pass limits of issue 10: |mean_K - mean_1| <= 0.2 sd_1 and |sd_K / sd_1 - 1| <= 0.15
MEAN_LIMIT, SD_LIMIT = 0.2, 0.15

#: --shard-cost: frames N, number of angles, target points per shard
COST_FRAMES = (180, 500, 1000)
COST_ANGLES = 3
COST_POINTS_PER_SHARD = (25_000, 100_000, 250_000, 500_000)
#: --shard-cost projection: chains, iterations per chain (warm-up + draws), leapfrog steps assumed
PROJECTED_CHAINS, PROJECTED_ITERATIONS, ASSUMED_LEAPFROG_STEPS = 4, 600, 15


def constant_weights(phi):
    """The true noise of :func:`demo_problem` (SIGMA per angle) as weights."""
    n_phi = len(phi)
    return AngleWeights(
        phi=np.asarray(phi), sigma=SIGMA[:n_phi], contrast=CONTRAST[:n_phi], offset=OFFSET[:n_phi], method="robust"
    )


def demo_problem(n_frames, rng, n_phi=None):
    """Simulated Dataset of the first ``n_phi`` angles (None: all of PHI) and an nlsq.json-like
    record (see module docstring)."""
    n_phi = len(PHI) if n_phi is None else n_phi
    t = DT * (1 + np.arange(n_frames))
    phi, contrast, offset, sigma = PHI[:n_phi], CONTRAST[:n_phi], OFFSET[:n_phi], SIGMA[:n_phi]
    full = pooled_points(np.zeros((n_phi, n_frames, n_frames)), np.ones((n_phi, n_frames, n_frames), bool))
    free_index = [INDEX[name] for name in FREE]

    def pooled_model(x):
        params = jnp.asarray(TRUTH).at[jnp.array(free_index)].set(x[: len(FREE)])
        return compute_c2_heterodyne_pooled(
            params,
            t,
            Q,
            DT,
            full.idx1,
            full.idx2,
            full.phi_index,
            phi,
            x[len(FREE) : len(FREE) + n_phi],
            x[len(FREE) + n_phi :],
        )

    x_true = np.concatenate([TRUTH[free_index], contrast, offset])
    clean = np.asarray(pooled_model(x_true))
    observed = clean + rng.standard_normal(clean.shape) * sigma[full.phi_index]
    c2 = np.zeros((n_phi, n_frames, n_frames))
    c2[full.phi_index, full.idx1, full.idx2] = observed
    c2 = c2 + np.transpose(c2, (0, 2, 1))
    dataset = Dataset(c2=c2, valid=np.ones(c2.shape, bool), t=t, phi=phi.copy(), dt=DT, q=Q)

    jac = np.asarray(jax.jacfwd(pooled_model)(x_true)) / sigma[full.phi_index][:, None]
    stderr = np.sqrt(np.diag(np.linalg.inv(jac.T @ jac)))
    x_fit = x_true + stderr * rng.standard_normal(len(x_true))
    fitted = dict(zip(FREE, x_fit[: len(FREE)], strict=True))
    errors = dict(zip(FREE, stderr[: len(FREE)], strict=True))
    parameters = {
        p.name: {
            "value": float(fitted.get(p.name, TRUTH[k])),
            "stderr": errors.get(p.name),
            "fixed": p.name not in FREE,
        }
        for k, p in enumerate(PARAMETERS)
    }
    record = {
        "parameters": parameters,
        "phi": phi.tolist(),
        "contrast": x_fit[len(FREE) : len(FREE) + n_phi].tolist(),
        "contrast_stderr": stderr[len(FREE) : len(FREE) + n_phi].tolist(),
        "offset": x_fit[len(FREE) + n_phi :].tolist(),
        "offset_stderr": stderr[len(FREE) + n_phi :].tolist(),
    }
    return dataset, record


def gradient_time(data, spec):
    """Best time (s) of one value-and-gradient of a shard's log density (the sampler's cost)."""
    value_and_grad = jax.jit(jax.value_and_grad(log_density))
    position = jnp.asarray(start_position(spec, False))
    jax.block_until_ready(value_and_grad(position, data, spec))
    times = []
    for _ in range(20):
        start = time.perf_counter()
        jax.block_until_ready(value_and_grad(position, data, spec))
        times.append(time.perf_counter() - start)
    return min(times)


def _seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def shard_cost_table():
    """Print the cost of one shard against its number of points (module docstring)."""
    jax.config.update("jax_enable_compilation_cache", False)  # "compile + 1st" compiles every time
    steps = PROJECTED_CHAINS * PROJECTED_ITERATIONS * ASSUMED_LEAPFROG_STEPS
    print(
        f"one shard's cost against its points: {COST_ANGLES} angles, {jax.local_device_count()} device(s); "
        f"projected sampling = {PROJECTED_CHAINS} chains x {PROJECTED_ITERATIONS} iterations x "
        f"{ASSUMED_LEAPFROG_STEPS} leapfrog steps (assumed) = {steps} gradients"
    )
    print(
        f"{'N':>5} {'K':>3} {'points/shard':>12} {'grad ms':>8} {'ns/point':>8} {'geometry s':>10} "
        f"{'compile + 1st s':>15} {'sampling s':>10} {'sampling min':>12}"
    )
    rng = np.random.default_rng(0)
    for n_frames in COST_FRAMES:
        dataset, record = demo_problem(n_frames, rng, COST_ANGLES)
        weights = constant_weights(dataset.phi)
        points = pooled_points(dataset.c2, dataset.valid)
        counts = sorted(
            {
                shard_count(len(points), {"num_shards": None, "points_per_shard": target})
                for target in COST_POINTS_PER_SHARD
            },
            reverse=True,
        )
        for k in counts:
            pad = max_shard_size(points, k, 0)
            data = shard_data(dataset, weights, points.take(shard_labels(points, k, 0) == 0), pad, k)
            spec, _ = build_model_spec(record, PRIOR, dataset.t, Q, COST_ANGLES, k)
            grad_s = gradient_time(data, spec)
            first_s = _seconds(lambda data=data, spec=spec: shard_geometry(data, spec, False))
            geometry_s = _seconds(lambda data=data, spec=spec: shard_geometry(data, spec, False))
            sampling_s = steps * grad_s
            print(
                f"{n_frames:>5} {k:>3} {pad:>12} {grad_s * 1e3:>8.2f} {grad_s / pad * 1e9:>8.1f} "
                f"{geometry_s:>10.2f} {first_s:>15.2f} {sampling_s:>10.0f} {sampling_s / 60:>12.1f}"
            )


def cmc_posterior(dataset, record, num_shards, settings):
    """Combined posterior summary {name: {mean, sd, ...}}, shard wall times and flagged shards of
    one CMC run with ``num_shards`` shards (one after another in this process)."""
    spec, info = build_model_spec(record, PRIOR, dataset.t, Q, len(dataset.phi), num_shards)
    weights = constant_weights(dataset.phi)
    results = sample_all_shards(dataset, weights, spec, info, settings, num_shards, clear_caches=True)
    draws, _ = combine_shards([r.unconstrained for r in results], info.names, spec.coords)
    flagged = sum(shard_diagnostics(r)["flagged"] for r in results)
    pad = max_shard_size(pooled_points(dataset.c2, dataset.valid), num_shards, 0)
    return posterior_summary(draws, settings.chains), [r.wall_time_s for r in results], flagged, pad


def consensus_table(frames):
    """Print the combined posterior of K = CONSENSUS_SHARDS against the full-data NUTS run
    (K = 1): the worst |mean_K - mean_1| / sd_1 and sd_K / sd_1 over the sampled quantities."""
    dataset, record = demo_problem(frames, np.random.default_rng(0), COST_ANGLES)
    settings = NutsSettings(300, 500, 4, 0.9, True, True, 10, False)
    full, wall, flagged, pad = cmc_posterior(dataset, record, 1, settings)
    print(
        f"consensus vs full-data NUTS: {COST_ANGLES} angles, N = {frames}, {pad} points; K = 1 took "
        f"{wall[0]:.0f} s, {flagged} flagged shard(s); limits |mean - full| <= {MEAN_LIMIT} sd, "
        f"|sd / sd_full - 1| <= {SD_LIMIT}"
    )
    print(
        f"{'K':>3} {'points/shard':>12} {'flagged':>7} {'total s':>8} {'worst mean dev (sd)':>20} "
        f"{'sd ratio range':>16} {'pass':>5}"
    )
    for k in CONSENSUS_SHARDS:
        summary, wall, flagged, pad = cmc_posterior(dataset, record, k, settings)
        deviation = {n: (summary[n]["mean"] - full[n]["mean"]) / full[n]["sd"] for n in full}
        ratio = {n: summary[n]["sd"] / full[n]["sd"] for n in full}
        worst = max(deviation, key=lambda n: abs(deviation[n]))
        ok = abs(deviation[worst]) <= MEAN_LIMIT and all(abs(r - 1) <= SD_LIMIT for r in ratio.values())
        print(
            f"{k:>3} {pad:>12} {flagged:>7} {sum(wall):>8.0f} {deviation[worst]:>+13.2f} ({worst:<6}"
            f"{min(ratio.values()):>8.2f}-{max(ratio.values()):.2f} {'yes' if ok else 'no':>5}"
        )


def main():
    configure_jax()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=180)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument(
        "--adapt-mass",
        action="store_true",
        help="re-estimate the mass matrix in warm-up (default: keep the Gauss-Newton whitening)",
    )
    parser.add_argument(
        "--shard-cost",
        action="store_true",
        help="print only the table of one shard's cost against its number of points",
    )
    parser.add_argument(
        "--consensus",
        action="store_true",
        help="print only the table of the combined posterior of K shards against K = 1",
    )
    args = parser.parse_args()
    if args.shard_cost:
        shard_cost_table()
        return
    if args.consensus:
        consensus_table(args.frames)
        return

    dataset, record = demo_problem(args.frames, np.random.default_rng(0))
    spec, info = build_model_spec(record, PRIOR, dataset.t, Q, len(PHI), args.shards)
    names = info.names
    points = pooled_points(dataset.c2, dataset.valid)
    labels = shard_labels(points, args.shards, 0)
    pad = max_shard_size(points, args.shards, 0)
    settings = NutsSettings(args.warmup, args.samples, args.chains, 0.85, True, args.adapt_mass, 10, False)
    shard_inputs = [
        shard_data(dataset, constant_weights(dataset.phi), points.take(labels == k), pad, args.shards)
        for k in range(args.shards)
    ]
    grad_s = gradient_time(shard_inputs[0], spec)

    print(
        f"demo-sized CMC: {len(PHI)} angles, N = {args.frames}, {len(points)} pooled points, "
        f"K = {args.shards} shards of <= {pad} points, {len(names)} sampled quantities, "
        f"{args.chains} chains x ({args.warmup} + {args.samples}), {jax.local_device_count()} device(s), "
        f"mass matrix {'adapted' if args.adapt_mass else 'identity in whitened coordinates'}"
    )
    print(f"value + gradient of one shard's log density: {grad_s * 1e3:.3f} ms ({grad_s / pad * 1e9:.1f} ns per point)")
    print(
        f"{'shard':>5} {'wall s':>8} {'div':>4} {'max R-hat':>9} {'bulk ESS':>8} {'tail ESS':>8} "
        f"{'depth':>5} {'E-BFMI':>6} {'ESS/s':>8}"
    )
    results, total = [], 0.0
    for k, data in enumerate(shard_inputs):
        result = run_shard(data, spec, info, settings, seed=0, shard=k, progress_bar=False)
        diag = shard_diagnostics(result)
        total += result.wall_time_s
        results.append(result)
        print(
            f"{k:>5} {result.wall_time_s:>8.2f} {diag['divergences']:>4} {diag['max_r_hat']:>9.3f} "
            f"{diag['min_ess_bulk']:>8.0f} {diag['min_ess_tail']:>8.0f} {diag['tree_depth_mean']:>5.1f} "
            f"{diag['min_e_bfmi']:>6.2f} {diag['min_ess_bulk'] / result.wall_time_s:>8.1f}"
        )
    start = time.perf_counter()
    draws, _ = combine_shards([r.unconstrained for r in results], names, spec.coords)
    summary = posterior_summary(draws, args.chains)
    combine_s = time.perf_counter() - start
    print(
        f"all shards {total:.1f} s (one after another, first includes compilation); combine + summary {combine_s:.2f} s"
    )
    truth = dict(zip(names, np.concatenate([TRUTH[[INDEX[n] for n in FREE]], CONTRAST, OFFSET]), strict=True))
    print(f"{'quantity':>12} {'truth':>12} {'mean':>12} {'sd':>10} {'(mean-truth)/sd':>16}")
    for name in names:
        s = summary[name]
        print(
            f"{name:>12} {truth[name]:>12.6g} {s['mean']:>12.6g} {s['sd']:>10.3g} "
            f"{(s['mean'] - truth[name]) / s['sd']:>16.2f}"
        )


if __name__ == "__main__":
    main()
