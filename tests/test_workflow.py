"""The Snakemake workflow: lint, dry runs, config validation, the conda prefix --sdm conda needs,
CPU pinning, code triggers, and one end-to-end run of the whole chain with ``q: all`` on a tiny
simulated file with two q bins (N = 40; q = 0.005 with one angle, q = 0.01 with three), one job
chain per q bin, the number of shards of each (1 and 2) chosen by cmc.points_per_shard from the
usable points the q_bins checkpoint counts.

Every Snakemake call runs in a temporary working directory with the repository's Snakefile, so
nothing is written into the checkout except the shared JAX compilation cache (.cache/jax).
"""

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from data_fixtures import TEST_TRUTH, WORKFLOW_FIXED, make_weights, write_test_file

from heterodyne.cli import main

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
PACKAGE = REPO / "heterodyne"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
PIN_CPUS = REPO / "workflow" / "scripts" / "pin_cpus.sh"

# rule -> CLI module it runs (heterodyne/cli/<module>.py)
RULE_COMMANDS = {
    "simulate_demo": "simulate",
    "q_bins": "q_bins",
    "ingest": "ingest",
    "weight": "weight",
    "fit_nlsq": "fit_nlsq",
    "cmc_shard": "cmc_shard",
    "cmc_combine": "cmc_combine",
    "cmc_joint_q": "cmc_joint_q",
    "figures": "figures",
    "report": "report",
    "report_index": "report",
    "study_tables": "tables",
    "study_figure": "study_figure",
    "cross_q": "cross_q",
    "fit_joint_q": "fit_joint_q",
    "paper": "paper",
    "audit": "audit",
}

#: characters a shell would act on: the end-to-end run happens in a folder with this name, and the
#: simulated file's name holds it too, so an unquoted path in any rule runs `touch PWNED` or breaks
HOSTILE = "a b 'q' \"dq\" $(touch PWNED) `touch PWNED`"

#: the simulated file (data_fixtures.TEST_TRUTH at N = 40, v0 = 600 A/s): q bins 0.005 (one angle,
#: phi = 70 deg) and 0.01 (three). With the default v0 = 150 the single-angle bin's phase stays below
#: 0.1 rad over the map, v0 is not determined there and its fit does not converge.
TINY_FRAMES = 40
TINY_TRUTH = {**TEST_TRUTH["parameters"], "v0": 600.0}
TINY_FILE = f"raw/tiny {HOSTILE}.hdf"
TINY_CONFIG = {
    "datasets": {"tiny": {"file": TINY_FILE, "q": "all", "joint_q": True}},
    # D0_sample, v0 and f0 free; the rest held at the simulated truth (D0_ref through `initial`, the
    # others at their registry defaults 0).
    "nlsq": {
        "initial": {"D0_ref": TEST_TRUTH["parameters"]["D0_ref"], "D0_sample": 10000.0, "v0": 100.0, "f0": 0.4},
        "fixed": WORKFLOW_FIXED,
    },
    # n_phi x 40 * 39 / 2 usable points: 780 at q0.005 (K = 1), 2340 at q0.01 (K = ceil(1.95) = 2)
    "cmc": {"points_per_shard": 1200, "warmup": 20, "samples": 20, "chains": 1},
}
#: the jobs after the per-q results that run once per run of the tiny workflow
STUDY_JOBS = {"cross_q": 1, "study_tables": 1, "audit": 1, "report_index": 1, "all": 1}
#: per q folder: (number of angles, usable points, shards)
TINY_BINS = {"q0.005": (1, 780, 1), "q0.01": (3, 2340, 2)}


def snakemake(workdir, *args):
    """Run Snakemake on the repository's Snakefile in ``workdir``; (returncode, stdout+stderr)."""
    env = dict(os.environ, HETERODYNE_JAX_CACHE=str(REPO / ".cache" / "jax"))
    proc = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(SNAKEFILE), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


def write_config(folder, config):
    path = Path(folder) / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def job_counts(output):
    """{rule: count} from the 'Job stats' table Snakemake prints before running (or dry-running)."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def jobs_run(output):
    """{rule: count} of the jobs a run started (the table printed before running misses the jobs
    that a checkpoint adds)."""
    counts = {}
    for rule in re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):$", output, re.M):
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def rule_inputs(output):
    """{rule: set of input paths} from the job listing of a (dry) run."""
    inputs = {}
    for m in re.finditer(r"^(?:local)?(?:rule|checkpoint) (\w+):\n(?:    .*\n)*?    input: (.*)$", output, re.M):
        inputs.setdefault(m.group(1), set()).update(m.group(2).split(", "))
    return inputs


# ---------------------------------------------------------------- lint and the default config


@pytest.fixture(scope="module")
def default_workdir(tmp_path_factory):
    """An empty folder holding a copy of config/config.yaml, as a fresh checkout has it."""
    workdir = tmp_path_factory.mktemp("default")
    (workdir / "config").mkdir()
    (workdir / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    return workdir


def test_lint_is_clean(default_workdir):
    code, out = snakemake(default_workdir, "--lint")
    assert code == 0, out
    assert "Lints for" not in out
    assert "Congratulations, your workflow is in a good condition!" in out


def test_list_rules_explains_every_step(default_workdir):
    """Every rule has a docstring, which `snakemake --list-rules` prints beside its name."""
    code, out = snakemake(default_workdir, "--list-rules")
    assert code == 0, out
    listed = dict(re.findall(r"^(\w+)(?: \((.+)\))?$", out, re.M))
    assert set(listed) == {*RULE_COMMANDS, "all"}, out
    assert [rule for rule, doc in listed.items() if not doc] == []


@pytest.fixture(scope="module")
def default_dry_run(default_workdir):
    """Dry run of config/config.yaml (read through the Snakefile's `configfile:` default)."""
    code, out = snakemake(default_workdir, "--dry-run", "--cores", "2")
    assert code == 0, out
    return out


def test_dry_run_of_default_config_lists_the_jobs_before_the_q_bins_are_known(default_dry_run):
    """The per-q chains come from the q_bins checkpoint (the demo says `q: all`): before it has
    run, a dry run lists the simulation, the q_bins job and the study-wide jobs only."""
    datasets = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["datasets"]
    n = len(datasets)
    expected = {"q_bins": n, "cross_q": n, "study_tables": 1, "audit": 1, "report_index": 1, "all": 1}
    expected.update({f"simulate_{name}": 1 for name, entry in datasets.items() if entry.get("simulate")})
    assert job_counts(default_dry_run) == expected
    assert "checkpoint jobs, which will result in alteration of the DAG" in default_dry_run


def _imported_package_files(module):
    """Files of heterodyne modules that ``module`` imports, directly or through other heterodyne
    modules, at any depth and anywhere in a module (function-level imports included), found by
    reading the source; plus each package's __init__.py on the way."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:k]) for k in range(1, len(parts))]  # parent packages run first
        source = _module_file(name)
        if source is None:  # namespace package: no code of its own
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("heterodyne"):
                todo.append(node.module)
                todo += [
                    f"{node.module}.{a.name}"
                    for a in node.names
                    if PACKAGE.joinpath(*node.module.split(".")[1:], f"{a.name}.py").exists()
                ]
            elif isinstance(node, ast.Import):
                todo += [a.name for a in node.names if a.name.startswith("heterodyne")]
    return {str(_module_file(name)) for name in seen} - {"None"}


def _module_file(name):
    """Source file of heterodyne module ``name``; None for a namespace package."""
    path = PACKAGE.joinpath(*name.split(".")[1:])
    if path.is_dir():
        init = path / "__init__.py"
        return init if init.exists() else None
    return path.with_suffix(".py")


def test_code_inputs_cover_every_module_a_step_imports(tiny_run, tmp_path):
    """Editing any module a step imports must rerun that step: it has to be a rule input. The
    rules come from forced dry runs of the tiny run (every per-q rule, known once its q bins are)
    and a dry run of the default config with a second simulated dataset (simulate, and the study
    figure, made for several datasets)."""
    workdir, config_path, _ = tiny_run
    # forcing the checkpoint hides the jobs after it (until it reruns): it and the other rules are
    # forced in two dry runs
    later = [rule for rule in RULE_COMMANDS if rule not in ("q_bins", "simulate_demo", "study_figure")]
    forced = ""
    for rules in (["q_bins"], later):
        code, out = snakemake(
            workdir,
            "--configfile",
            str(config_path),
            "--dry-run",
            "--cores",
            "2",
            "--forcerun",
            *rules,
            "--",
            "all",
            "paper",
        )
        assert code == 0, out
        forced += out
    two = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    two["datasets"]["demo_copy"] = {**two["datasets"]["demo"], "file": "resources/demo_copy.hdf"}
    code, study = snakemake(tmp_path, "--configfile", str(write_config(tmp_path, two)), "--dry-run", "--cores", "2")
    assert code == 0, study
    assert job_counts(study)["study_figure"] == 1
    inputs = {}
    for rule, files in [*rule_inputs(forced).items(), *rule_inputs(study).items()]:
        inputs.setdefault(rule, set()).update(files)
    assert set(inputs) >= set(RULE_COMMANDS)
    for rule, command in RULE_COMMANDS.items():
        needed = _imported_package_files(f"heterodyne.cli.{command}")
        assert str(PACKAGE / "cli" / f"{command}.py") in needed
        missing = needed - inputs[rule]
        assert not missing, f"rule {rule} lacks code inputs {sorted(missing)}"
    # package data read at run time: the figures' caption templates
    captions = {str(p) for p in (PACKAGE / "plots" / "captions").glob("*.rst")}
    assert captions and captions <= inputs["figures"]


# ---------------------------------------------------------------- config validation


def _schema_message(config):
    """The first message jsonschema itself gives for ``config`` (defaults are not needed here)."""
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(config))
    assert len(errors) == 1
    return errors[0].message


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"colour": "blue"}, id="unknown-key"),
        pytest.param({"cmc": {"num_shards": "four"}}, id="wrong-type"),
        pytest.param({"cmc": {"num_shards": 0}}, id="out-of-range"),
        pytest.param({"cmc": {"num_shards": 2, "points_per_shard": 1000}}, id="both-shard-counts"),
    ],
)
def test_invalid_config_fails_before_any_job_with_the_schema_message(tmp_path, change):
    config = {**TINY_CONFIG, **change}
    message = _schema_message(config)
    code, out = snakemake(tmp_path, "--configfile", str(write_config(tmp_path, config)), "--cores", "1")
    assert code != 0
    assert message in out, out
    assert "Building DAG" not in out
    assert not (tmp_path / "raw").exists() and not (tmp_path / "results").exists()


def test_simulation_that_misses_a_per_angle_value_fails_before_any_job(tmp_path):
    """Five angles with the default contrast (four values): the simulation's check stops the run
    while the DAG is built, naming the key."""
    config = {
        **TINY_CONFIG,
        "datasets": {"five": {"file": "raw/five.hdf", "simulate": True}},
        "simulate": {"phi": [10.0, 50.0, 80.0, 115.0, 150.0], "noise": [0.005] * 5, "offset": [1.0] * 5},
    }
    code, out = snakemake(tmp_path, "--configfile", str(write_config(tmp_path, config)), "--cores", "1")
    assert code != 0
    assert "'simulate.contrast' has 4 values but 'simulate.phi' has 5" in out, out
    assert not (tmp_path / "raw").exists() and not (tmp_path / "results").exists()


def test_config_override_on_the_command_line_reaches_the_jobs(tiny_run):
    """`--config` changes the settings the rules pass (`--settings`), so the weights of both q bins
    and everything after them rerun, with the overriding value on the weight command line."""
    workdir, config_path, _ = tiny_run
    code, out = snakemake(
        workdir,
        "--configfile",
        str(config_path),
        "--config",
        "weight={method: uniform}",
        "--dry-run",
        "--printshellcmds",
        "--cores",
        "2",
    )
    assert code == 0, out
    counts = job_counts(out)
    assert counts["weight"] == len(TINY_BINS) and counts["fit_nlsq"] == len(TINY_BINS)
    weight_commands = [line for line in out.splitlines() if "heterodyne weight --settings" in line]
    assert len(weight_commands) == len(TINY_BINS)
    assert all('"method": "uniform"' in line for line in weight_commands)


def test_workflow_runs_as_a_snakemake_module_with_the_using_workflows_config(tmp_path):
    """`module` use: the rules come prefixed, the schema and scripts are found beside this
    Snakefile, and the settings the jobs receive are those of the using workflow's config."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["simulate"]["n_frames"] = 64
    write_config(tmp_path, config)
    (tmp_path / "Snakefile").write_text(
        f'configfile: "config.yaml"\n\nmodule heterodyne:\n    snakefile:\n        "{SNAKEFILE}"\n'
        "    config:\n        config\n\nuse rule * from heterodyne as heterodyne_*\n"
    )
    code, out = snakemake(
        tmp_path, "--snakefile", str(tmp_path / "Snakefile"), "--dry-run", "--printshellcmds", "--cores", "2"
    )
    assert code == 0, out
    assert job_counts(out) == {
        "heterodyne_simulate_demo": 1,
        "heterodyne_q_bins": 1,
        "heterodyne_cross_q": 1,
        "heterodyne_study_tables": 1,
        "heterodyne_audit": 1,
        "heterodyne_report_index": 1,
        "heterodyne_all": 1,
    }
    (simulate,) = [line for line in out.splitlines() if "heterodyne simulate --settings" in line]
    assert '"n_frames": 64' in simulate


def test_sdm_conda_is_refused_with_another_conda_prefix_than_the_checkouts(default_workdir):
    """workflow/envs/heterodyne.yaml installs the checkout as `../..` of the conda prefix, so any
    other prefix (here the working folder's default) stops before the DAG is built, naming the
    prefix to pass."""
    code, out = snakemake(default_workdir, "--dry-run", "--sdm", "conda", "--cores", "1")
    assert code != 0
    assert f"pass --conda-prefix {REPO / '.snakemake' / 'conda'}" in out, out
    assert "Building DAG" not in out


# ---------------------------------------------------------------- CPU pinning


def _allowed_cpus(command_prefix, hold_s=0.0):
    """CPU list a process started through ``command_prefix`` is allowed to run on."""
    script = f"grep Cpus_allowed_list /proc/self/status; sleep {hold_s}"
    return subprocess.Popen([*command_prefix, "bash", "-c", script], stdout=subprocess.PIPE, text=True)


def _parse_cpu_list(text):
    cpus = set()
    for part in text.split(":", 1)[1].strip().split(","):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


@pytest.mark.skipif(
    not Path("/proc/self/status").exists() or len(os.sched_getaffinity(0)) < 2, reason="needs Linux and at least 2 CPUs"
)
def test_concurrent_jobs_are_pinned_to_disjoint_cpus(tmp_path):
    allowed = os.sched_getaffinity(0)
    env_prefix = ["env", f"HETERODYNE_CPU_LOCKS={tmp_path}", str(PIN_CPUS)]
    first = _allowed_cpus([*env_prefix, "1"], hold_s=3)
    time.sleep(0.5)  # let the first job take its CPU
    second = _allowed_cpus([*env_prefix, "1"])
    cpus_second = _parse_cpu_list(second.communicate(timeout=30)[0])
    cpus_first = _parse_cpu_list(first.communicate(timeout=30)[0])
    assert len(cpus_first) == 1 and len(cpus_second) == 1
    assert cpus_first.isdisjoint(cpus_second)
    assert cpus_first | cpus_second <= allowed
    # asking for more CPUs than exist gives all of them; two threads give two CPUs
    everything = _allowed_cpus([*env_prefix, str(len(allowed) + 3)])
    assert _parse_cpu_list(everything.communicate(timeout=30)[0]) == allowed
    two = _allowed_cpus([*env_prefix, "2"])
    assert len(_parse_cpu_list(two.communicate(timeout=30)[0])) == 2


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole workflow on TINY_CONFIG: (workdir, config path, output of the first run)."""
    workdir = tmp_path_factory.mktemp("tiny") / HOSTILE
    (workdir / "raw").mkdir(parents=True)
    write_test_file(workdir / TINY_FILE, n_frames=TINY_FRAMES, parameters=TINY_TRUTH)
    config_path = write_config(workdir, TINY_CONFIG)
    code, out = snakemake(workdir, "--configfile", str(config_path), "--cores", "2")
    assert code == 0, out
    return workdir, config_path, out


def test_end_to_end_run_writes_every_result(tiny_run):
    workdir, _, out = tiny_run
    results = workdir / "results" / "tiny"
    n_bins = len(TINY_BINS)
    shards = sum(k for _, _, k in TINY_BINS.values())
    assert jobs_run(out) == {
        "q_bins": 1,
        "ingest": n_bins,
        "weight": n_bins,
        "fit_nlsq": n_bins,
        "cmc_shard": shards,
        "cmc_combine": n_bins,
        "figures": n_bins,
        "report": n_bins,
        "fit_joint_q": 1,
        "cmc_joint_q": 1,
        **STUDY_JOBS,
    }
    q_bins = json.loads((results / "q_bins.json").read_text())["bins"]
    assert [(b["folder"], b["q"], b["n_angles"]) for b in q_bins] == [
        (folder, float(folder[1:]), n_phi) for folder, (n_phi, _, _) in TINY_BINS.items()
    ]
    index = (workdir / "results" / "index.html").read_text()
    for folder, (n_phi, n_points, k) in TINY_BINS.items():
        chain = results / folder
        assert sorted(p.name for p in (chain / "cmc").glob("shard_*.h5")) == [f"shard_{i}.h5" for i in range(k)]
        nlsq = json.loads((chain / "nlsq.json").read_text())
        assert len(nlsq["phi"]) == n_phi
        assert nlsq["provenance"]["config_section"]["fixed"] == TINY_CONFIG["nlsq"]["fixed"]
        summary = json.loads((chain / "cmc" / "summary.json").read_text())
        assert summary["num_shards"] == k and len(summary["shards"]) == k and summary["n_points"] == n_points
        # one c2 map figure per angle, one trace figure per shard, each with PNG, PDF and caption
        figures = chain / "figures"
        assert len(list(figures.glob("c2_maps_*.png"))) == n_phi
        assert len(list(figures.glob("cmc_trace_*.png"))) == k
        for png in figures.glob("*.png"):
            assert png.with_suffix(".pdf").is_file() and png.with_suffix(".rst").is_file()
        # a benchmark and a log per job
        steps = [
            "ingest",
            "weight",
            "fit_nlsq",
            "cmc_combine",
            "figures",
            "report",
            *(f"cmc_shard_{i}" for i in range(k)),
        ]
        for step in steps:
            assert (chain / "benchmarks" / f"{step}.tsv").is_file(), (folder, step)
            assert (workdir / "logs" / "tiny" / folder / f"{step}.log").is_file(), (folder, step)
        assert f"tiny/{folder}" in (chain / "report.html").read_text()
        assert f'href="tiny/{folder}/report.html"' in index
    # the single-angle bin's fit holds nothing beyond the config (phi0 is fixed there already)
    single = json.loads((results / "q0.005" / "nlsq.json").read_text())
    assert single["converged"] and not single.get("held_fixed")
    # the study tables: per q bin one row per free parameter and method, one per angle; linked from the index
    parameters = (workdir / "results" / "parameters.csv").read_text().splitlines()
    rows = [line.split(",") for line in parameters if not line.startswith("#")]
    assert rows[0][:4] == ["dataset", "q", "method", "parameter"]
    n_free = 14 - len(TINY_CONFIG["nlsq"]["fixed"])
    for folder, (n_phi, _, _) in TINY_BINS.items():
        mine = [r for r in rows[1:] if float(r[1]) == float(folder[1:])]
        summary = json.loads((results / folder / "cmc" / "summary.json").read_text())
        assert sum(r[2] == "nlsq" for r in mine) == n_free + 2 * n_phi
        assert sum(r[2] == "cmc" for r in mine) == len(summary["parameters"])
    assert len(rows) == 1 + sum(1 for r in rows[1:] if float(r[1]) in (0.005, 0.01))
    quality = [
        line for line in (workdir / "results" / "fit_quality.csv").read_text().splitlines() if not line.startswith("#")
    ]
    assert len(quality) == 1 + sum(n_phi for n_phi, _, _ in TINY_BINS.values())
    assert 'href="parameters.csv"' in index and 'href="fit_quality.csv"' in index


def test_cross_q_summary_and_joint_fit_of_the_two_bins(tiny_run):
    """Both bins were simulated with one truth: the cross-q test compares the shared free parameters
    (D0_sample, v0; f0 may vary with q and is left out) of the two per-q fits against their own
    nlsq.json, and the joint fit's estimates lie within 3 standard errors of the truth."""
    workdir, _, _ = tiny_run
    results = workdir / "results" / "tiny"
    cross_q = json.loads((results / "cross_q.json").read_text())
    assert cross_q["q"] == [0.005, 0.01] and cross_q["test"] is not None
    assert sorted(cross_q["test"]["parameters"]) == ["D0_sample", "v0"]
    fits = [json.loads((results / folder / "nlsq.json").read_text())["parameters"] for folder in TINY_BINS]
    for name, entry in cross_q["test"]["parameters"].items():
        values = np.array([fit[name]["value"] for fit in fits])
        weights = np.array([fit[name]["stderr"] ** -2 for fit in fits])
        mean = float(np.sum(weights * values) / np.sum(weights))
        assert entry["marginal_mean"] == pytest.approx(mean, rel=1e-9)
        assert entry["chi2"] == pytest.approx(float(np.sum(weights * (values - mean) ** 2)), rel=1e-9)
    assert cross_q["q_dependent"] is False
    figures = sorted(p.name for p in (results / "cross_q").glob("*.png"))
    assert figures == ["cross_q_parameters.png", "cross_q_rates.png"]
    joint = json.loads((results / "joint_q" / "nlsq.json").read_text())
    assert [b["folder"] for b in joint["q_bins"]] == list(TINY_BINS)
    for name in ("D0_sample", "v0"):
        entry = joint["parameters"][name]
        assert abs(entry["value"] - TINY_TRUTH[name]) < 3 * entry["stderr"], (name, entry)
    # the joint posterior: the same shared parameters, near the truth, as wide as the joint fit's
    # errors (the same information; the tiny run's 20 draws per bin estimate a sd to ~20 %)
    posterior = json.loads((results / "joint_q" / "cmc" / "summary.json").read_text())
    assert posterior["shared_parameters"] == ["D0_sample", "v0"]
    assert [b["folder"] for b in posterior["q_bins"]] == list(TINY_BINS)
    assert {"f0@q0.005", "f0@q0.01", "contrast_0@q0.005", "offset_2@q0.01"} <= set(posterior["parameters"])
    for name in ("D0_sample", "v0"):
        estimate, stderr = posterior["parametric"][name], joint["parameters"][name]["stderr"]
        assert abs(estimate["mean"] - TINY_TRUTH[name]) < 3 * max(estimate["sd"], stderr), (name, estimate)
        assert 0.5 < estimate["sd"] / stderr < 2.0, (name, estimate, stderr)
        assert cross_q["joint_fit"]["cmc"]["parameters"][name]["q50"] == posterior["parameters"][name]["q50"]
    index = (workdir / "results" / "index.html").read_text()
    assert "cross_q/cross_q_parameters.png" in index
    for folder in TINY_BINS:  # each q bin's page shows the dataset's verdict
        assert "No significant q-dependence" in (results / folder / "report.html").read_text()


def test_paper_target_writes_vector_figures_and_their_readme(tiny_run):
    """`snakemake paper` with an empty paper section: maps, cuts and physics of the first dataset's
    lowest q bin, each PDF listed in results/paper/README.md with the SHA-256 of its inputs."""
    workdir, config_path, _ = tiny_run
    code, out = snakemake(workdir, "--configfile", str(config_path), "--cores", "2", "paper")
    assert code == 0, out
    pdfs = sorted((workdir / "results" / "paper").glob("*.pdf"))
    assert [p.name for p in pdfs] == ["cuts_tiny_q0.005.pdf", "maps_tiny_q0.005.pdf", "physics_tiny_q0.005.pdf"]
    readme = (workdir / "results" / "paper" / "README.md").read_text()
    nlsq = workdir / "results" / "tiny" / "q0.005" / "nlsq.json"
    assert all(p.name in readme for p in pdfs)
    assert hashlib.sha256(nlsq.read_bytes()).hexdigest() in readme


def test_paths_with_spaces_quotes_and_substitutions_run_nothing(tiny_run):
    workdir, config_path, _ = tiny_run
    assert HOSTILE in str(config_path) and (workdir / TINY_CONFIG["datasets"]["tiny"]["file"]).is_file()
    assert not list(workdir.parent.rglob("PWNED")) and not Path("PWNED").exists()


def test_every_value_in_a_shell_command_is_quoted():
    """Paths and settings reach jobs through the rules' shell commands: each {...} there must be
    shell-quoted ({...:q}), whatever it holds (only {threads}, an integer, is left bare)."""
    commands = []
    for rules in (REPO / "workflow" / "rules").glob("*.smk"):
        commands += re.findall(r"^ +shell:\n((?: +f?\".*\"\n)+)", rules.read_text(), re.M)
    assert len(commands) == len(RULE_COMMANDS)
    fields = re.findall(r"\{([^{}]*)\}", "".join(commands))
    assert "params.settings:q" in fields and "output:q" in fields
    assert [f for f in fields if not f.endswith(":q") and f != "threads"] == []


def test_audit_passes_on_the_run_and_names_a_file_swapped_for_another_datasets(tiny_run, tmp_path, capsys):
    workdir, _, _ = tiny_run
    audit = json.loads((workdir / "results" / "audit.json").read_text())
    assert audit["passed"] and {
        "tiny/q_bins.json",
        "tiny/cross_q.json",
        "tiny/joint_q/nlsq.json",
        "tiny/joint_q/cmc/summary.json",
        "tiny/q0.01/dataset.h5",
        "tiny/q0.01/cmc/shard_1.h5",
        "tiny/q0.005/report.html",
        "parameters.csv",
        "fit_quality.csv",
    } <= {f["file"] for f in audit["files"]}
    assert (
        f"{len(audit['files'])} files checked against the inputs they record, 0 failed"
        in (workdir / "results" / "index.html").read_text()
    )
    # the run as a reviewer receives it (elsewhere: recorded paths are relative to the run folder)
    received = tmp_path / "received"
    shutil.copytree(workdir, received, ignore=shutil.ignore_patterns(".snakemake"))
    assert main(["audit", str(received / "results")]) == 0
    # ... with one q bin's weights.json replaced by one of another dataset (same layout, other numbers)
    _, other_weights, _ = make_weights(tmp_path / "other")
    shutil.copy(other_weights, received / "results" / "tiny" / "q0.01" / "weights.json")
    capsys.readouterr()
    assert main(["audit", str(received / "results")]) == 1
    failed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if "  FAIL  " in line}
    assert {
        "tiny/q0.01/nlsq.json",
        "tiny/q0.01/nlsq.h5",
        "tiny/q0.01/cmc/shard_0.h5",
        "tiny/q0.01/report.html",
        "parameters.csv",
    } <= set(failed)
    assert all("input results/tiny/q0.01/weights.json has changed" in line for line in failed.values())
    assert not {"tiny/q0.01/dataset.h5", "tiny/q0.01/weights.json"} & set(failed)
    assert not [name for name in failed if name.startswith("tiny/q0.005/")]


def test_second_run_does_nothing(tiny_run):
    workdir, config_path, _ = tiny_run
    code, out = snakemake(workdir, "--configfile", str(config_path), "--cores", "2")
    assert code == 0, out
    assert "Nothing to be done" in out


def _dry_run_after_change(workdir, config_path, section, key, value):
    """Job counts of a dry run after setting ``section.key = value`` in the run's config file
    (restored afterwards; a dry run changes no output)."""
    config = json.loads(json.dumps(TINY_CONFIG))
    config.setdefault(section, {})[key] = value
    try:
        write_config(workdir, config)
        code, out = snakemake(workdir, "--configfile", str(config_path), "--dry-run", "--cores", "2")
    finally:
        write_config(workdir, TINY_CONFIG)
    assert code == 0, out
    return job_counts(out)


def test_figure_option_reruns_only_figures_and_reports(tiny_run):
    workdir, config_path, _ = tiny_run
    counts = _dry_run_after_change(workdir, config_path, "figures", "cut_ages", 2)
    n = len(TINY_BINS)
    assert counts == {"figures": n, "report": n, "audit": 1, "report_index": 1, "all": 1}


def test_fit_option_reruns_the_fit_and_what_follows(tiny_run):
    workdir, config_path, _ = tiny_run
    counts = _dry_run_after_change(workdir, config_path, "nlsq", "max_nfev", 150)
    n, k = len(TINY_BINS), sum(k for _, _, k in TINY_BINS.values())
    assert counts == {
        "fit_nlsq": n,
        "cmc_shard": k,
        "cmc_combine": n,
        "figures": n,
        "report": n,
        "fit_joint_q": 1,
        "cmc_joint_q": 1,
        **STUDY_JOBS,
    }


def test_points_per_shard_sets_the_number_of_shard_jobs_from_the_data(tiny_run):
    """K is read from the usable points of each q bin in q_bins.json: at 600 points per shard 780 -> 2 and
    2340 -> 4 shards, and CMC and everything after it rerun."""
    workdir, config_path, _ = tiny_run
    counts = _dry_run_after_change(workdir, config_path, "cmc", "points_per_shard", 600)
    n = len(TINY_BINS)
    assert counts == {
        "cmc_shard": 2 + 4,
        "cmc_combine": n,
        "cmc_joint_q": 1,
        "figures": n,
        "report": n,
        **STUDY_JOBS,
    }


def test_snakemake_report_zip_holds_the_pages_and_each_figure_once(tiny_run):
    """The q bins' figures are inside their pages only; the cross-q figures are items with captions."""
    workdir, config_path, _ = tiny_run
    code, out = snakemake(workdir, "--configfile", str(config_path), "--report", "report.zip")
    assert code == 0, out
    assert "ERROR" not in out  # every caption is valid reStructuredText
    added = sorted(re.findall(r"Adding (\S+) \(", out))
    cross_q = sorted(p.name for p in (workdir / "results" / "tiny" / "cross_q").glob("*.png"))
    n = len(TINY_BINS)
    assert added == sorted([*cross_q, *["nlsq.json", "summary.json", "weights.json", "report.html"] * n])
    with zipfile.ZipFile(workdir / "report.zip") as archive:
        assert sorted(Path(name).name for name in archive.namelist() if "/data/raw/" in name) == added
        html = archive.read("report/report.html").decode()
    assert "|q v|</tt> against q" in html  # caption of workflow/report/cross_q.rst
    assert "Self-contained HTML report of dataset" in html  # caption of workflow/report/dataset_report.rst
