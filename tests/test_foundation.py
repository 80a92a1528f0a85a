"""Parameter registry, provenance records, atomic output, CLI error handling and an import without
side effects."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from heterodyne.atomic import atomic_folder, atomic_output
from heterodyne.core.parameters import PARAMETER_NAMES, PARAMETERS, as_dict, as_vector, default_bounds, default_values
from heterodyne.provenance import config_hash, provenance_record, sha256_file


def test_registry_order_defaults_and_bounds():
    assert PARAMETER_NAMES == (
        "D0_ref",
        "alpha_ref",
        "D_offset_ref",
        "D0_sample",
        "alpha_sample",
        "D_offset_sample",
        "v0",
        "beta",
        "v_offset",
        "f0",
        "f1",
        "f2",
        "f3",
        "phi0",
    )
    lower, upper = default_bounds()
    values = default_values()
    assert np.all(lower < upper) and np.all(lower <= values) and np.all(values <= upper)
    assert all(p.unit and p.description for p in PARAMETERS)
    vector = as_vector({"v0": 7.5, "phi0": -3.0})
    assert vector[6] == 7.5 and vector[13] == -3.0 and vector[0] == PARAMETERS[0].default
    assert as_dict(vector)["v0"] == 7.5
    with pytest.raises(KeyError, match="D0"):
        as_vector({"D0": 1.0})


def test_provenance_record_contents(tmp_path):
    data = tmp_path / "input.bin"
    data.write_bytes(b"\x00\x01heterodyne" * 1000)
    section = {"b": [1, 2], "a": {"x": 0.5}}
    record = provenance_record(section, [data], argv=["heterodyne", "ingest", "--dataset", "demo"])
    assert record["input_sha256"][str(data)] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert sha256_file(data) == hashlib.sha256(data.read_bytes()).hexdigest()
    canonical = json.dumps({"a": {"x": 0.5}, "b": [1, 2]}, separators=(",", ":"))
    assert record["config_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert config_hash({"a": {"x": 0.5}, "b": [1, 2]}) == record["config_sha256"]  # key order irrelevant
    assert record["config_section"] == section
    assert record["command_line"] == ["heterodyne", "ingest", "--dataset", "demo"]
    assert record["git_commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}", record["git_commit"])
    for name in ("jax", "numpyro", "nlsq", "numpy", "snakemake"):
        assert re.match(r"\d+\.\d+", record["versions"][name]), name
    assert record["package_version"] == __import__("heterodyne").__version__


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out" / "result.json"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("step failed")
    assert not target.exists() and list(target.parent.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_text("complete")
    assert target.read_text() == "complete" and len(list(target.parent.iterdir())) == 1


def test_atomic_folder_replaces_the_folder_only_on_success(tmp_path):
    target = tmp_path / "figures"
    target.mkdir()
    (target / "old.png").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "new.png").write_text("partial")
            raise RuntimeError("step failed")
    assert [p.name for p in tmp_path.iterdir()] == ["figures"] and (target / "old.png").read_text() == "old"
    with atomic_folder(target) as tmp:
        (tmp / "new.png").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["figures"]
    assert [p.name for p in target.iterdir()] == ["new.png"]


def test_cli_rejects_unknown_command():
    script = Path(sys.executable).with_name("heterodyne")  # the installed console script
    result = subprocess.run([str(script), "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice" in result.stderr


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import heterodyne
for module in pkgutil.walk_packages(heterodyne.__path__, "heterodyne."):
    importlib.import_module(module.name)
import jax
print(jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir)
from heterodyne.jax_config import configure_jax
configure_jax()
print(jax.config.jax_enable_x64, jax.config.jax_compilation_cache_dir)
"""


def test_importing_the_package_changes_no_jax_setting_until_configure_jax(tmp_path):
    cache = tmp_path / "jax-cache"
    env = {**os.environ, "HETERODYNE_JAX_CACHE": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False None", f"True {cache}"]
    assert list(tmp_path.iterdir()) == []  # nothing written into the current folder
