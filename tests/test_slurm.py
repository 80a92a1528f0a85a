"""The workflow through the SLURM profile (`--workflow-profile slurm`) on a one-node SLURM cluster
started by workflow/scripts/slurm_single_node.sh, against a local run of the same config.

Needs root, Debian's SLURM, munge and MariaDB packages (.ci/run installs them) and the executor
plugin (the `test` extra pins it). Elsewhere the tests are skipped with the reason; with CI=true a
missing prerequisite fails instead, so CI cannot pass without running them.

Expectations: every non-local job is a SLURM job that sacct lists as COMPLETED; the NLSQ values
and the CMC draws are bit-identical to the local run's (same config, seed and threads per rule:
the fit's XLA threads follow the rule's threads, the CMC chains run on one XLA thread); a job that
fails makes snakemake exit non-zero promptly (no hang on job states); a status command that fails
stops the run before any job with the fix (that test needs only the plugin).
"""

import importlib.metadata
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from data_fixtures import WORKFLOW_FIXED

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow" / "scripts" / "slurm_single_node.sh"
SNAKEMAKE = str(Path(os.sys.executable).parent / "snakemake")
#: the executor plugin version the profile is tested with (pyproject.toml, `test` extra)
PLUGIN = ("snakemake-executor-plugin-slurm", "2.8.0")
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct")

#: one q bin of 3 angles at N = 40, K = 2 shards, one short chain each: 5 SLURM jobs
SIMULATE = {
    "q": 0.01,
    "phi": [0.0, 45.0, 90.0],
    "n_frames": 40,
    "contrast": [0.12, 0.1, 0.14],
    "offset": [1.0, 1.0, 1.0],
    "noise": [0.004, 0.004, 0.004],
    "parameters": {"v0": 600.0},
}
CONFIG = {
    "datasets": {"s": {"file": "raw/s.hdf", "q": 0.01}},
    "nlsq": {
        "initial": {"D0_sample": 10000.0, "v0": 100.0, "f0": 0.4},
        "fixed": WORKFLOW_FIXED,
    },
    "cmc": {"num_shards": 2, "warmup": 20, "samples": 20, "chains": 1},
}
FOLDER = Path("results") / "s" / "q0.01"
#: the NLSQ fit and both CMC shards (the consensus of the draws is a function of them)
TARGETS = [str(FOLDER / "nlsq.json"), str(FOLDER / "cmc" / "shard_0.h5"), str(FOLDER / "cmc" / "shard_1.h5")]
#: the rules of TARGETS that run as SLURM jobs (q_bins is a local rule)
SLURM_RULES = {"ingest": 1, "weight": 1, "fit_nlsq": 1, "cmc_shard": 2}
#: fast polling for a short workflow on one node (the plugin's first status check comes after 40 s
#: by default; the profile's latency-wait of 60 s is for a network file system)
FAST_POLLING = [
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--seconds-between-status-checks",
    "2",
    "--latency-wait",
    "5",
]


def missing_prerequisite():
    """Why the SLURM tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root (the one-node cluster starts system daemons)"
    absent = [cmd for cmd in DAEMONS if shutil.which(cmd) is None]
    if absent:
        return (
            f"{', '.join(absent)} not installed (apt-get install --no-install-recommends slurmctld slurmd "
            "slurm-client slurmdbd munge mariadb-server; .ci/run does this)"
        )
    try:
        version = importlib.metadata.version(PLUGIN[0])
    except importlib.metadata.PackageNotFoundError:
        return f"{PLUGIN[0]} not installed (pip install -e '.[test]')"
    if version != PLUGIN[1]:
        return f"{PLUGIN[0]} {version} installed, the profile is tested with {PLUGIN[1]}"
    return None


@pytest.fixture(scope="module")
def cluster():
    """Seconds the cluster took to come up; stops it afterwards unless it was already running."""
    reason = missing_prerequisite()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, but the SLURM end-to-end test cannot run: {reason}")
        pytest.skip(reason)
    was_up = subprocess.run([SCRIPT, "status"], capture_output=True).returncode == 0
    start = time.monotonic()
    proc = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    yield time.monotonic() - start
    if not was_up:
        subprocess.run([SCRIPT, "stop"], capture_output=True, timeout=120)


def start_snakemake(workdir, targets, *options, config="config.yaml"):
    """Start Snakemake making ``targets`` with the repository's Snakefile and the config file
    ``workdir``/``config`` (output to ``workdir``/snakemake.out); a handle for :func:`finish`."""
    env = dict(os.environ, HETERODYNE_JAX_CACHE=str(REPO / ".cache" / "jax"))
    with open(workdir / "snakemake.out", "w") as out:
        proc = subprocess.Popen(
            [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), f"--configfile={config}", *targets, *options],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, time.monotonic(), workdir


def finish(run, timeout=420):
    """(returncode, output, seconds) of a run started by :func:`start_snakemake`."""
    proc, start, workdir = run
    try:
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, (workdir / "snakemake.out").read_text(), time.monotonic() - start


def new_workdir(folder, raw):
    folder.mkdir()
    (folder / "raw").mkdir()
    shutil.copy(raw, folder / "raw" / "s.hdf")
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG, sort_keys=False))
    return folder


def sacct_jobs(since):
    """[(job id, name, state, comment)] of the allocations sacct lists since ``since`` (sacct time)."""
    out = subprocess.run(
        ["sacct", "-a", "-n", "-X", "-P", "-S", since, "-o", "JobID,JobName,State,Comment%200"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [tuple(line.split("|", 3)) for line in out.splitlines() if line]


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """(slurm workdir, local workdir, sacct rows of the SLURM run, its seconds)."""
    root = tmp_path_factory.mktemp("slurm")
    raw = root / "s.hdf"
    proc = subprocess.run(
        [
            str(Path(SNAKEMAKE).parent / "heterodyne"),
            "simulate",
            "--settings",
            json.dumps({"simulate": SIMULATE}),
            "--output",
            str(raw),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    slurm, local = new_workdir(root / "slurm", raw), new_workdir(root / "local", raw)
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    # side by side: the SLURM run mostly waits for job states (the threads per job, and so the
    # numbers, do not depend on what else runs)
    slurm_run = start_snakemake(slurm, TARGETS, "--workflow-profile", "slurm", *FAST_POLLING)
    local_run = start_snakemake(local, TARGETS, "--cores", "2")
    code, local_out, local_seconds = finish(local_run)
    assert code == 0, local_out
    code, out, seconds = finish(slurm_run)
    assert code == 0, out
    print(f"SLURM test: cluster up in {cluster:.1f} s, SLURM run {seconds:.1f} s, local run {local_seconds:.1f} s")
    return slurm, local, sacct_jobs(since), seconds


def test_every_job_ran_as_a_completed_slurm_job(runs):
    slurm, _, jobs, seconds = runs
    states = {state for _, _, state, _ in jobs}
    assert states == {"COMPLETED"}, jobs
    per_rule = {}
    for _, _, _, comment in jobs:
        rule = next(r for r in SLURM_RULES if f"rule_{r}_" in comment or comment == f"rule_{r}")
        per_rule[rule] = per_rule.get(rule, 0) + 1
    assert per_rule == SLURM_RULES, jobs
    assert seconds < 300


def test_results_equal_the_local_run_bit_for_bit(runs):
    slurm, local, _, _ = runs
    fits = [json.loads((run / FOLDER / "nlsq.json").read_text()) for run in (slurm, local)]
    assert fits[0]["parameters"] == fits[1]["parameters"]
    assert fits[0]["chi2"] == fits[1]["chi2"] and fits[0]["contrast"] == fits[1]["contrast"]
    quantities = sorted(
        ["D0_sample", "v0", "f0", *(f"{kind}_{k}" for kind in ("contrast", "offset") for k in range(3))]
    )
    for name in ("shard_0.h5", "shard_1.h5"):
        with h5py.File(slurm / FOLDER / "cmc" / name) as a, h5py.File(local / FOLDER / "cmc" / name) as b:
            assert sorted(a["draws"]) == sorted(b["draws"]) == quantities
            assert np.array_equal(a["unconstrained"][()], b["unconstrained"][()])
            for quantity in quantities:
                assert np.array_equal(a["draws"][quantity][()], b["draws"][quantity][()]), quantity


def test_a_failing_job_ends_the_run_promptly_with_an_error(runs):
    """Bounds that exclude the initial value make fit_nlsq fail: snakemake exits 1 within a bounded
    time instead of waiting (no retry here, for time: the profile's one retry adds a second failing
    job and ~30 s)."""
    slurm, _, _, _ = runs
    bad = {**CONFIG, "nlsq": {**CONFIG["nlsq"], "bounds": {"D0_sample": [1.0, 100.0]}}}
    (slurm / "bad.yaml").write_text(yaml.safe_dump(bad, sort_keys=False))
    code, out, seconds = finish(
        start_snakemake(
            slurm, TARGETS[:1], "--workflow-profile", "slurm", *FAST_POLLING, "--retries", "0", config="bad.yaml"
        ),
        timeout=240,
    )
    assert code != 0, out
    assert "Error in rule fit_nlsq" in out and "initial value outside its bounds" in out
    assert seconds < 180, seconds


def test_a_status_command_that_fails_stops_the_run_before_any_job(tmp_path):
    """Without SLURM accounting `sacct` fails and the plugin would wait forever: the workflow asks
    the status command once before the first job and stops with the fix (a stand-in `sacct` that
    fails as it does without slurmdbd; needs only the executor plugin)."""
    try:
        importlib.metadata.version(PLUGIN[0])
    except importlib.metadata.PackageNotFoundError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, but {PLUGIN[0]} is not installed")
        pytest.skip(f"{PLUGIN[0]} not installed (pip install -e '.[test]')")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sacct").write_text(
        "#!/bin/sh\necho 'sacct: error: Problem talking to the database: Connection refused' >&2\nexit 1\n"
    )
    (fake / "sacct").chmod(0o755)
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copy(REPO / "config" / "config.yaml", workdir / "config.yaml")
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--configfile=config.yaml", "--workflow-profile", "slurm"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "SLURM status command 'sacct' does not work here (sacct: error: Problem talking to the database" in (
        proc.stdout + proc.stderr
    )
    assert not (workdir / "resources").exists() and not (workdir / "logs").exists()  # no job ran
