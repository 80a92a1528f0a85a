"""Workflow speed: the demo (config/config.yaml) end to end, then a rerun with nothing changed.

Run: .venv/bin/python benchmarks/workflow.py [--cores 2] [--warm-cache]

The workflow runs in a fresh temporary folder with `snakemake --cores N`. By default the JAX
compilation cache is empty too (a clean checkout after `make run` has installed); --warm-cache
uses the repository's .cache/jax instead. Snakemake is pinned to the first N CPUs of this
process (taskset) so that --cores N is what the jobs get even on a larger machine. Printed: wall
time of both runs, and per rule the wall and CPU seconds from its benchmark file
(results/demo/benchmarks/*.tsv). Targets (issue #7): demo < 300 s on 2 cores; rerun < 10 s.
"""

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_workflow(workdir, cores, cache):
    """Wall seconds of one `snakemake --cores N` on the default config in ``workdir``."""
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    pin = ["taskset", "-c", ",".join(map(str, cpus))] if shutil.which("taskset") else []
    env = dict(os.environ, HETERODYNE_JAX_CACHE=str(cache))
    start = time.perf_counter()
    subprocess.run(
        [*pin, SNAKEMAKE, "--snakefile", str(REPO / "workflow" / "Snakefile"), "--cores", str(cores)],
        cwd=workdir,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def rule_times(results):
    """[(step, wall s, cpu s)] from the Snakemake benchmark files of one dataset."""
    rows = []
    for path in sorted(results.glob("benchmarks/*.tsv")):
        with open(path) as handle:
            record = next(csv.DictReader(handle, delimiter="\t"))
        rows.append((path.stem, float(record["s"]), float(record["cpu_time"])))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--warm-cache", action="store_true", help="use the repository's .cache/jax instead of an empty cache"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "config").mkdir()
        shutil.copy(REPO / "config" / "config.yaml", workdir / "config" / "config.yaml")
        cache = REPO / ".cache" / "jax" if args.warm_cache else workdir / ".cache" / "jax"
        first = run_workflow(workdir, args.cores, cache)
        second = run_workflow(workdir, args.cores, cache)
        print(f"cores {args.cores}, JAX cache {'warm' if args.warm_cache else 'empty'}")
        print(f"{'step':<16}{'wall (s)':>10}{'cpu (s)':>10}")
        for step, wall, cpu in rule_times(workdir / "results" / "demo"):
            print(f"{step:<16}{wall:>10.1f}{cpu:>10.1f}")
        print(f"{'whole demo':<16}{first:>10.1f}")
        print(f"{'no-change rerun':<16}{second:>10.1f}")


if __name__ == "__main__":
    main()
