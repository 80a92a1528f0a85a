"""The software declarations agree: pyproject.toml, environment.yml, workflow/envs/heterodyne.yaml,
the Snakefile's min_version, requirements.lock, LICENSE and CITATION.cff (no JAX; reads the files
only).

Checks: the rules' conda environment (workflow/envs/heterodyne.yaml) has pyproject.toml's
dependencies with the same lower bounds (and pins), environment.yml those plus the test and lint extras;
both ask for pyproject's Python; min_version equals snakemake's lower bound; every dependency of
pyproject.toml (test and lint extras included) is pinned in requirements.lock to a version it accepts, each
pin with at least one sha256 hash; the env files install this checkout (environment.yml editable,
heterodyne.yaml from `../..`, which is the checkout); LICENSE and CITATION.cff carry pyproject's
license and version.
"""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENV_FILES = {
    "environment.yml": ROOT / "environment.yml",
    "workflow/envs/heterodyne.yaml": ROOT / "workflow" / "envs" / "heterodyne.yaml",
}
#: conda-forge packages whose PyPI name differs
CONDA_TO_PYPI = {"matplotlib-base": "matplotlib"}
#: the extras environment.yml and requirements.lock hold beside the dependencies
EXTRAS = PYPROJECT["optional-dependencies"]["test"] + PYPROJECT["optional-dependencies"]["lint"]


def _bounds(requirements):
    """{canonical name: version specifier text} of PEP 508 requirement strings."""
    parsed = (Requirement(text) for text in requirements)
    return {canonicalize_name(CONDA_TO_PYPI.get(r.name, r.name)): str(r.specifier) for r in parsed}


def _env_file(path):
    """(conda specs, pip entries) of a conda environment file's dependencies."""
    conda, pip = [], []
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        if isinstance(entry, dict):
            pip += entry["pip"]
        else:
            conda.append(entry)
    return conda, pip


def _env_packages(path):
    """{name: specifier} of an env file: its conda packages except python and pip, and its pip
    requirements except local paths."""
    conda, pip = _env_file(path)
    packages = [spec for spec in conda if Requirement(spec).name not in ("python", "pip")]
    packages += [entry for entry in pip if not entry.startswith(("-e", "."))]
    return _bounds(packages)


def _lock():
    """{canonical name: (pinned version, number of sha256 hashes)} of requirements.lock."""
    pins, current = {}, None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        pin = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", line)
        if pin:
            current = canonicalize_name(pin[1])
            pins[current] = (pin[2], 0)
        elif re.fullmatch(r"\s+--hash=sha256:[0-9a-f]{64}( \\)?", line):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_rule_environment_has_the_dependencies_with_the_same_bounds():
    assert _env_packages(ENV_FILES["workflow/envs/heterodyne.yaml"]) == _bounds(PYPROJECT["dependencies"])


def test_user_environment_has_the_dependencies_and_the_extras_with_the_same_bounds():
    expected = _bounds(PYPROJECT["dependencies"] + EXTRAS)
    assert _env_packages(ENV_FILES["environment.yml"]) == expected


def test_env_files_ask_for_the_python_of_pyproject():
    for name, path in ENV_FILES.items():
        assert f"python{PYPROJECT['requires-python']}" in _env_file(path)[0], name


def test_min_version_is_the_snakemake_lower_bound():
    min_version = re.search(r'^min_version\("([^"]+)"\)', (ROOT / "Snakefile").read_text(), re.M)[1]
    assert _bounds(PYPROJECT["dependencies"])["snakemake"] == f">={min_version}"


def test_every_dependency_is_pinned_in_the_lock_to_an_accepted_version_with_hashes():
    pins = _lock()
    for text in PYPROJECT["dependencies"] + EXTRAS:
        requirement = Requirement(text)
        version, hashes = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), (text, version)
        assert hashes >= 1, requirement.name
    assert all(hashes >= 1 for _, hashes in pins.values())


def test_env_files_install_this_checkout():
    assert "-e ." in _env_file(ENV_FILES["environment.yml"])[1]
    rule_env = ENV_FILES["workflow/envs/heterodyne.yaml"]
    assert "../.." in _env_file(rule_env)[1]
    assert (rule_env.parent / "../..").resolve() == ROOT


def test_license_and_citation_match_pyproject():
    assert PYPROJECT["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert (citation["version"], citation["license"]) == (PYPROJECT["version"], PYPROJECT["license"])
