"""Provenance record attached to every output file.

A record holds: package version, git commit (or "unknown"), the config section that produced the
output and its SHA-256 (over canonical JSON), the SHA-256 of every input file, the versions of jax,
numpyro, nlsq, numpy and snakemake, the command line, and the UTC time.
"""

import datetime
import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import heterodyne

_TRACKED_PACKAGES = ("jax", "jaxlib", "numpyro", "nlsq", "numpy", "snakemake")


def sha256_file(path):
    """SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_hash(section):
    """SHA-256 of a config section as canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(section, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def git_commit():
    """Commit of the checkout holding this package, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(heterodyne.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def package_versions():
    """Installed versions of the numerical stack (read from metadata; nothing is imported)."""
    versions = {}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance_record(config_section, input_files, argv=None):
    """Provenance dict for one output.

    ``config_section`` is the (already defaulted) config that drove the step; ``input_files``
    the paths it read. ``argv`` defaults to ``sys.argv``.
    """
    return {
        "package": "heterodyne",
        "package_version": heterodyne.__version__,
        "git_commit": git_commit(),
        "config_section": config_section,
        "config_sha256": config_hash(config_section),
        "input_sha256": {str(p): sha256_file(p) for p in input_files},
        "versions": package_versions(),
        "command_line": list(sys.argv if argv is None else argv),
        "created_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_provenance_attrs(h5_object, record):
    """Store a provenance record on an HDF5 file or group as the JSON attribute ``provenance``."""
    h5_object.attrs["provenance"] = json.dumps(record, sort_keys=True, default=str)


def read_provenance_attrs(h5_object):
    """Inverse of :func:`write_provenance_attrs`."""
    return json.loads(h5_object.attrs["provenance"])
