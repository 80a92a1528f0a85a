"""Audit of a results folder: is every result consistent with the files it records as inputs?

For each file under the folder that carries a provenance record (JSON, HDF5, PNG, HTML, CSV; read by
:func:`heterodyne.lineage.read_provenance`):

* every input it names exists and still has the recorded SHA-256. Recorded paths are relative to
  the folder the workflow ran in, taken to be the parent of the results folder. An input outside
  the results folder (the raw file, the config) that is not there is reported, not failed, so a
  results folder received from someone else can be audited on its own;
* its ``config_sha256`` is the hash of its recorded config section;
* its inputs written by one command in one folder (CMC shards, the figures of a report) record the same
  inputs, config and package version, and every input was written by the same package version.

A .json, .h5 or .png file without a record fails; other files (benchmarks, PDFs, captions, the
Snakemake report) are counted as not audited. ``index.html`` and ``audit.json`` at the top of
the folder are skipped: the index shows this audit.

audit.json (:func:`save_audit`, :func:`read_audit`; this module is the one that writes and reads
it): ``passed`` (every file passed), ``files`` [{file, n_inputs, problems, notes, passed}],
``not_audited`` (the number of files without provenance) and ``provenance``.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from heterodyne.atomic import atomic_output
from heterodyne.errors import InputError
from heterodyne.json_record import read_json_record
from heterodyne.lineage import check_same_origin, digest, read_provenance
from heterodyne.provenance import config_hash

#: files at the top of the results folder that are made from the audit itself
SKIPPED = ("index.html", "audit.json")
#: result files that must carry a provenance record
RECORDED = (".json", ".h5", ".png")


@dataclass(frozen=True)
class FileAudit:
    """One audited file: its path relative to the results folder, how many recorded inputs were
    checked, the problems found (empty: consistent) and notes (inputs not available here)."""

    file: str
    n_inputs: int
    problems: list
    notes: list

    @property
    def passed(self):
        return not self.problems


def _resolve(recorded, workdir):
    path = Path(recorded)
    return path if path.is_absolute() else workdir / path


def _inside(path, root):
    return path.resolve().is_relative_to(root.resolve())


def audit_file(path, root, records):
    """:class:`FileAudit` of ``path`` under results folder ``root``; ``records`` caches the
    provenance of every file by resolved path."""
    record = records[path.resolve()]
    name = str(path.relative_to(root))
    if record is None:
        return FileAudit(name, 0, ["no provenance record"], [])
    problems, notes, neighbours = [], [], {}
    if config_hash(record.get("config_section")) != record.get("config_sha256"):
        problems.append("config_sha256 is not the hash of its recorded config section")
    inputs = record.get("input_sha256", {})
    for recorded, sha in inputs.items():
        source = _resolve(recorded, root.parent)
        if not source.is_file():
            (problems if _inside(source, root) else notes).append(f"input {recorded} is missing")
        elif digest(source) != sha:
            problems.append(f"input {recorded} has changed since (SHA-256 differs from the recorded one)")
        elif _inside(source, root) and records.get(source.resolve()):
            upstream = records[source.resolve()]
            if upstream.get("package_version") != record.get("package_version"):
                problems.append(
                    f"input {recorded} was written by package version "
                    f"{upstream.get('package_version')}, this file by {record.get('package_version')}"
                )
            # inputs of one command in one folder were combined into this file (the shards of a
            # dataset, its figures); the study tables read several datasets' files of one command
            command = (tuple(upstream.get("command_line", [])[1:2]), source.resolve().parent)
            neighbours.setdefault(command, []).append(source)
    for group in neighbours.values():
        try:
            check_same_origin(group)
        except InputError as err:
            problems.append(str(err))
    return FileAudit(name, len(inputs), problems, notes)


def audit_results(results_root):
    """(audits of every recorded file, number of files not audited) under ``results_root``."""
    root = Path(results_root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; give the results folder of a workflow run")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and str(p.relative_to(root)) not in SKIPPED
    )
    records = {p.resolve(): read_provenance(p) for p in files}
    audited = [p for p in files if records[p.resolve()] is not None or p.suffix in RECORDED]
    return [audit_file(p, root, records) for p in audited], len(files) - len(audited)


def audit_table(audits, not_audited):
    """Plain-text pass/fail table, one line per file, and a summary line."""
    width = max([len(a.file) for a in audits] + [4])
    lines = [f"{'file':<{width}}  inputs  result"]
    for a in audits:
        detail = "; ".join(a.problems or a.notes)
        lines.append(
            f"{a.file:<{width}}  {a.n_inputs:>6}  {'pass' if a.passed else 'FAIL'}" + (f"  {detail}" if detail else "")
        )
    failed = sum(not a.passed for a in audits)
    lines.append(
        f"audit: {len(audits)} files with provenance, {failed} failed; "
        f"{not_audited} files without provenance not audited"
    )
    return "\n".join(lines)


def save_audit(path, audits, not_audited, provenance):
    """Write audit.json (module docstring) of ``audits`` and the count ``not_audited``."""
    record = {
        "passed": all(a.passed for a in audits),
        "files": [{**asdict(a), "passed": a.passed} for a in audits],
        "not_audited": not_audited,
        "provenance": provenance,
    }
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def read_audit(path):
    """The audit.json record at ``path``; InputError naming the file and `heterodyne audit` otherwise."""
    return read_json_record(path, ("passed", "files", "not_audited"), "audit")
