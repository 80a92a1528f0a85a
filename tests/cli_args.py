"""Command lines of the ``heterodyne`` steps as the workflow rules build them (``--settings``)."""

import json
from pathlib import Path

import yaml

from heterodyne.cli import main


def settings(config, *sections, dataset=None):
    """``["--settings", JSON]`` with the named top-level sections of the YAML ``config`` (a path)
    as written (absent: {}), and the entry of ``dataset`` under ``datasets`` as ``dataset``."""
    loaded = yaml.safe_load(Path(config).read_text()) or {}
    chosen = {name: loaded.get(name, {}) for name in sections}
    if dataset is not None:
        chosen["dataset"] = loaded["datasets"][dataset]
    return ["--settings", json.dumps(chosen)]


def whole_config(config):
    """``["--settings", JSON]`` holding the whole YAML ``config`` (a path) as ``config``, as the
    report rule passes it."""
    return ["--settings", json.dumps({"config": yaml.safe_load(Path(config).read_text())})]


def ingest(config, dataset, output):
    """Run `heterodyne q-bins` (q_bins.json in the folder above ``output``'s, as the workflow
    lays out results/<dataset>/q_bins.json and results/<dataset>/<q folder>/dataset.h5) and then
    `heterodyne ingest` of the dataset's single q bin into ``output``; the exit status of the
    first step that fails, else 0."""
    q_bins = Path(output).parent.parent / "q_bins.json"
    status = main(["q-bins", *settings(config, dataset=dataset), "--output", str(q_bins)])
    if status:
        return status
    (folder,) = [entry["folder"] for entry in json.loads(q_bins.read_text())["bins"]]
    return main(
        [
            "ingest",
            *settings(config, dataset=dataset),
            "--q-bins",
            str(q_bins),
            "--q-folder",
            folder,
            "--output",
            str(output),
        ]
    )


def index_page(root):
    """Run `heterodyne report --index` over the results folder ``root`` with its audit.json, writing
    ``root``/index.html; its exit status."""
    root = Path(root)
    audit, output = root / "audit.json", root / "index.html"
    return main(["report", "--index", "--results-root", str(root), "--audit", str(audit), "--output", str(output)])
