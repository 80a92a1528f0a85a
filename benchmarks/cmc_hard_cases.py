"""CMC on the hard posteriors of tests/cmc_hard_cases.py: per shard wall time, divergences, R-hat,
bulk and tail ESS, tree depth, gradient evaluations per draw and ESS per second; then the
combined posterior against the truth.

Run: .venv/bin/python benchmarks/cmc_hard_cases.py [case ...] [--shards 2]

Every case uses the test suite's sampler settings (cmc_hard_cases.SETTINGS) and K shards run
one after another in this process (the first shard of each case pays its compilation). The
pass criteria are those of heterodyne/cmc/diagnostics.py.
"""

import argparse
import sys
import time
from pathlib import Path

import jax
import numpy as np

from heterodyne.cmc.combine import posterior_summary
from heterodyne.cmc.compare import undetermined
from heterodyne.cmc.diagnostics import shard_diagnostics
from heterodyne.jax_config import configure_jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the cases live with the tests
from cmc_hard_cases import CASES, SETTINGS, combined_run, true_values  # noqa: E402


def main():
    configure_jax()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", choices=list(CASES), help="default: every case")
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    print(f"settings: {SETTINGS._asdict()}, K = {args.shards}")
    print(
        f"{'case':>24} {'shard':>5} {'wall s':>7} {'div':>4} {'R-hat':>7} {'bulk':>6} {'tail':>6} "
        f"{'depth':>5} {'max':>3} {'grad/draw':>9} {'ESS/s':>7} {'target':>6} {'draws':>5} {'flagged':>7}"
    )
    for name in args.cases or list(CASES):
        jax.clear_caches()  # each case compiles its own shapes: drop the last case's executables
        case = CASES[name]
        started = time.perf_counter()
        record, spec, info, shards, draws = combined_run(case, args.shards)
        total = time.perf_counter() - started
        for k, shard in enumerate(shards):
            d = shard_diagnostics(shard)
            ess = min(d["min_ess_bulk"], d["min_ess_tail"])
            print(
                f"{name:>24} {k:>5} {shard.wall_time_s:>7.1f} {d['divergences']:>4} {d['max_r_hat']:>7.4f} "
                f"{d['min_ess_bulk']:>6.0f} {d['min_ess_tail']:>6.0f} {d['tree_depth_mean']:>5.2f} "
                f"{d['tree_depth_max']:>3} {np.mean(shard.num_steps):>9.1f} {ess / shard.wall_time_s:>7.1f} "
                f"{d['target_accept']:>6} {d['draws_per_chain']:>5} {'yes' if d['flagged'] else 'no':>7}"
            )
        summary = posterior_summary(draws, SETTINGS.chains)
        z = [
            (summary[n]["mean"] - v) / summary[n]["sd"]
            for n, v in zip(info.names, true_values(case, info.names), strict=True)
        ]
        loose = [entry["parameter"] for entry in undetermined(summary, info.names, spec.prior)]
        ratios = [summary[n]["sd"] / record["parameters"][n]["stderr"] for n in info.free_names]
        print(
            f"{name:>24} total {total:.1f} s (NLSQ, geometry, sampling, consensus); |mean - truth| / sd <= "
            f"{max(abs(v) for v in z):.2f}; CMC sd / NLSQ stderr {min(ratios):.2f}-{max(ratios):.2f}; "
            f"not determined: {', '.join(loose) or 'none'}"
        )


if __name__ == "__main__":
    main()
