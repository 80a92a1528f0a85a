# Paths and the job environment shared by every rule. No analysis happens here.

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import DeploymentMethod

# The repository root (two folders above this file), also when this workflow is used as a module
# (workflow.basedir is then the using workflow's folder).
REPO_DIR = Path(str(workflow.current_basedir)).parents[1]

# The config with the schema's defaults filled in, for the decisions made while building the DAG
# (simulated datasets, number of shards). Jobs get the sections as written (`section`) and fill
# the same defaults themselves, so a defaulted key never travels twice.
DEFAULTED = copy.deepcopy(config)
validate(DEFAULTED, str(REPO_DIR / "workflow" / "schemas" / "config.schema.yaml"))

DATASETS = sorted(config["datasets"])

# Software of all rules: workflow/envs/heterodyne.yaml, built by `--sdm conda`; without it the
# rules run in the environment running Snakemake (the Makefile's .venv, installed from
# requirements.lock, which CI tests; or environment.yml's conda environment). The env file installs
# this checkout as `../..` of the folder conda reads it from: Snakemake's copy in the conda prefix,
# so --sdm conda needs the prefix <checkout>/.snakemake/conda (the default when Snakemake runs in
# the checkout; from another folder pass it with --conda-prefix).
CONDA_ENV = str(REPO_DIR / "workflow" / "envs" / "heterodyne.yaml")
if workflow.deployment_settings is not None and (
    DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
):
    conda_prefix = Path(workflow.deployment_settings.conda_prefix or ".snakemake/conda").resolve()
    if conda_prefix.parent.parent != REPO_DIR.resolve():
        raise WorkflowError(
            f"--sdm conda: the conda prefix {conda_prefix} is not .snakemake/conda of this checkout, "
            "so workflow/envs/heterodyne.yaml would not find the package to install; pass "
            f"--conda-prefix {REPO_DIR.resolve() / '.snakemake' / 'conda'} (or run Snakemake in the "
            "checkout without --conda-prefix)"
        )

# The exact versions CI tested (`make` installs them); the reports flag a run that used others.
LOCK_FILE = str(REPO_DIR / "requirements.lock")

# Job environment, set here so that every job (and every cluster job, which re-reads this file)
# gets it:
# - PATH: `heterodyne` of the environment running Snakemake, even when that environment is not
#   activated (.venv/bin/snakemake), and workflow/scripts/pin_cpus.sh, which pins each job to
#   `threads` CPUs (XLA sizes its thread pools from the CPU affinity, not from OMP_NUM_THREADS).
#   With --sdm conda the rule's environment is activated in front of these.
# - HETERODYNE_JAX_CACHE: one JAX persistent compilation cache for all jobs, so a new process
#   reuses the kernels that earlier jobs compiled (an existing setting is kept).
JOB_PATH = [Path(sys.executable).parent, REPO_DIR / "workflow" / "scripts"]
os.environ.update(
    PATH=os.pathsep.join([*map(str, JOB_PATH), os.environ.get("PATH", "")]),
    HETERODYNE_JAX_CACHE=os.environ.get("HETERODYNE_JAX_CACHE", str(Path(".cache/jax").resolve())),
)


# SLURM (`--workflow-profile slurm`): the executor plugin learns each job's state from `sacct` (or
# `squeue`, --slurm-status-command) and, when that command fails (no accounting database), waits
# forever without a word. Ask it once before the first job is submitted (onstart: the executor is
# known by then, not while this file is read) and stop with the fix instead.
STATUS_PROBES = {
    "sacct": ["sacct", "-n", "-X", "--starttime", "now"],
    "squeue": ["squeue", "-h", "-u", str(os.getuid())],
}


onstart:
    if workflow.executor_plugin is not None and workflow.executor_plugin.name == "slurm":
        status_command = getattr(workflow.executor_settings, "status_command", None) or "sacct"
        try:
            subprocess.run(STATUS_PROBES[status_command], check=True, capture_output=True, text=True, timeout=30)
        except (OSError, KeyError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", None) or err
            raise WorkflowError(
                f"SLURM status command '{status_command}' does not work here ({str(detail).strip()}); the "
                "executor plugin would wait forever for job states. Fix the cluster's accounting (sacct "
                "needs slurmdbd), or pass --slurm-status-command squeue when MinJobAge is >= 120 s "
                "(`scontrol show config | grep MinJobAge`). workflow/README.md, 'Running on a cluster'."
            )


def per_attempt(amount):
    """Resource function: ``amount`` times the attempt (1, 2, ...), so a job that failed, e.g. on
    memory or time, is retried (``retries`` in the profile) with more."""
    return lambda wildcards, attempt: amount * attempt


# Each step receives the config sections it reads as one JSON object (`--settings`), never the
# config file: `--config` overrides and module use reach every job, and a rule's params change
# exactly when those sections change, whatever the key order in the YAML file.
def section(*keys):
    """``{key: config[key]}`` of the named top-level sections, as canonical JSON."""
    return json.dumps({key: config.get(key, {}) for key in keys}, sort_keys=True)


def dataset_section(*keys):
    """Params function: the dataset's own entry (as ``dataset``) plus the named top-level
    sections, as canonical JSON."""

    def settings(wildcards):
        entry = {"dataset": config["datasets"][wildcards.dataset]}
        return json.dumps({**entry, **{key: config.get(key, {}) for key in keys}}, sort_keys=True)

    return settings


def q_bins(dataset):
    """The dataset's q bins ({folder, index, q, n_angles, n_points} each), read from
    results/{d}/q_bins.json, written by the `q_bins` checkpoint; Snakemake re-evaluates the jobs
    that depend on them once it exists. The only checkpoint: jobs found through a second one
    (behind this) are not re-evaluated when that second one has already run (Snakemake 9.27)."""
    with open(checkpoints.q_bins.get(dataset=dataset).output[0]) as handle:
        return json.load(handle)["bins"]


def q_folders(dataset):
    """The results folders (q0.01, ...) of the dataset's q bins."""
    return [entry["folder"] for entry in q_bins(dataset)]


def every_q(pattern):
    """Input function: ``pattern`` (with {dataset} and {qbin}) for every q bin of the wildcard's
    dataset, or of every dataset in a rule without that wildcard."""

    def files(wildcards):
        names = [wildcards.dataset] if "dataset" in wildcards.keys() else DATASETS
        return [pattern.format(dataset=d, qbin=q) for d in names for q in q_folders(d)]

    return files


# Package code is an input of each rule; editing a module that a step runs makes the step's
# outputs older than their input, so Snakemake's mtime trigger reruns the step and everything
# downstream. The package is located without importing it (importing starts JAX, about 1 s; only
# shard_indices below imports it, when the DAG needs the number of shards).
PACKAGE_DIR = Path(importlib.util.find_spec("heterodyne").origin).parent

# What every step imports: the package's root modules, the CLI dispatcher, the physics core and
# the dataset/weights file formats (the weights format carries the noise model). Each rule adds
# its own sub-packages and CLI module. The schema is not code here: its defaults reach each rule
# through `params` (the validated config).
CODE_BASE = (
    "__init__.py",
    "atomic.py",
    "config.py",
    "errors.py",
    "jax_config.py",
    "json_record.py",
    "lineage.py",
    "noise_model.py",
    "provenance.py",
    "cli/__init__.py",
    "core",
    "data",
    "weighting/__init__.py",
    "weighting/weights_file.py",
)

# The owners of the result files (each file's layout, writer and reader, with what they import):
# every step that reads a result file of an earlier step reads it through its owner.
RESULT_FILE_OWNERS = (
    "fit/__init__.py",
    "fit/results.py",
    "fit/joint_q_layout.py",
    "fit/joint_q_results.py",
    "cmc/__init__.py",
    "cmc/coordinates.py",
    "cmc/draws_file.py",
    "cmc/summary_file.py",
)


def package_code(*parts):
    """Files of the heterodyne package under `parts` (sub-packages or modules), bytecode
    caches excluded."""
    files = []
    for part in parts:
        path = PACKAGE_DIR / part
        candidates = path.rglob("*") if path.is_dir() else [path]
        files += [str(f) for f in candidates if f.is_file() and "__pycache__" not in f.parts]
    return sorted(files)


def shard_indices(wildcards):
    """0..K-1 for the CMC shards of one q bin, K from heterodyne.cmc.pooling.shard_count (imported
    here, at DAG time). Without cmc.num_shards, K depends on the q bin's usable points,
    counted by the `q_bins` checkpoint (q_bins.json)."""
    from heterodyne.cmc.pooling import shard_count

    cmc = DEFAULTED["cmc"]
    n_points = None
    if cmc["num_shards"] is None:
        (n_points,) = [b["n_points"] for b in q_bins(wildcards.dataset) if b["folder"] == wildcards.qbin]
    return range(shard_count(n_points, cmc))


def shard_files(pattern):
    """Input function: ``pattern`` (with {dataset}, {qbin} and {shard}) for every shard of the q bin."""
    return lambda wildcards: expand(
        pattern, dataset=wildcards.dataset, qbin=wildcards.qbin, shard=shard_indices(wildcards)
    )


def joint_q_results(wildcards):
    """The joint multi-q fit's nlsq.json and joint posterior's summary.json (results/{d}/joint_q/)
    when the dataset asks for them (``joint_q: true``), else none."""
    if DEFAULTED["datasets"][wildcards.dataset].get("joint_q", False):
        return [
            f"results/{wildcards.dataset}/joint_q/nlsq.json",
            f"results/{wildcards.dataset}/joint_q/cmc/summary.json",
        ]
    return []


# the config sections `heterodyne paper` reads (rule paper, study.smk)
PAPER_SECTIONS = ("paper", "datasets", "figures")


def paper_inputs(wildcards):
    """Every file `heterodyne paper` reads (heterodyne.plots.paper.rule_inputs), once the q bins
    of the datasets it draws are known."""
    from heterodyne.config import validate_section
    from heterodyne.plots.paper import rule_inputs
    from heterodyne.plots.paper_plan import datasets_used

    written = {key: config.get(key, {}) for key in PAPER_SECTIONS}
    for name in datasets_used({key: validate_section(key, copy.deepcopy(value)) for key, value in written.items()}):
        checkpoints.q_bins.get(dataset=name)
    return rule_inputs(written, "results")
