"""Bad input to `heterodyne q-bins` and `heterodyne ingest`: one clear message, exit status 2, no output
written."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cli_args
import h5py
import numpy as np
import pytest
import yaml
from data_fixtures import write_test_file

MAPS = "xpcs/twotime/correlation_map"
QMAP = "xpcs/qmap"


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "good_results.hdf"
    write_test_file(path, n_frames=20)
    return path


def _edit(path, action):
    with h5py.File(path, "r+") as f:
        action(f)


def _replace(f, key, data):
    del f[key]
    f[key] = data


def _truncate(path):
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)


# name -> (how to spoil a copy of the good file, dataset config overrides, words the message must hold)
CASES = {
    "missing file": (lambda p: p.unlink(), {}, ["file not found"]),
    "not hdf5": (lambda p: p.write_text("q,phi\n0.01,0\n"), {}, ["not an HDF5 file"]),
    "truncated hdf5": (_truncate, {}, ["truncated or damaged"]),
    "no layout": (lambda p: _edit(p, lambda f: [f.__delitem__(k) for k in list(f)]), {}, ["neither APS-U", "legacy"]),
    "no maps": (lambda p: _edit(p, lambda f: f.__delitem__(MAPS)), {}, ["no correlation maps", MAPS]),
    "empty map group": (
        lambda p: _edit(p, lambda f: [f[MAPS].__delitem__(k) for k in list(f[MAPS])]),
        {},
        ["no correlation maps"],
    ),
    "unequal shapes": (
        lambda p: _edit(p, lambda f: _replace(f, f"{MAPS}/c2_00002", np.ones((15, 15), "f4"))),
        {},
        ["unequal shapes", "(15, 15)", "(20, 20)"],
    ),
    "non-square": (
        lambda p: _edit(p, lambda f: _replace(f, f"{MAPS}/c2_00002", np.ones((20, 15), "f4"))),
        {},
        ["c2_00002", "(20, 15)", "square"],
    ),
    "bins vs maps": (
        lambda p: _edit(p, lambda f: f.__delitem__(f"{MAPS}/c2_00004")),
        {},
        ["processed_bins", "4 bins", "3 maps"],
    ),
    "q not present": (None, {"q": 0.5}, ["q = 0.5", "outside", "0.01"]),
    "phi not present": (None, {"phi": [45.0]}, ["phi = 45", "not present", "-20, 25, 70"]),
    "empty selection": (None, {"frames": [10, 10]}, ["frames", "selects 0 rows"]),
    "window out of range": (None, {"frames": [0, 25]}, ["[0, 25)", "out of range", "20 rows"]),
    "dt missing": (
        lambda p: _edit(p, lambda f: f.__delitem__("entry/instrument/detector_1/frame_time")),
        {},
        ["frame_time", "dt cannot be computed"],
    ),
    "dt zero": (
        lambda p: _edit(p, lambda f: _replace(f, "entry/instrument/detector_1/frame_time", 0.0)),
        {},
        ["dt = ", "must be > 0"],
    ),
    "all-NaN map": (
        lambda p: _edit(p, lambda f: _replace(f, f"{MAPS}/c2_00003", np.full((20, 20), np.nan, "f4"))),
        {"q": 0.01},
        ["label 4", "all NaN"],
    ),
    "directory as file": (lambda p: (p.unlink(), p.mkdir()), {}, ["is a directory", "not a file"]),
    "NaN phi centre": (
        lambda p: _edit(p, lambda f: _replace(f, f"{QMAP}/dynamic_v_list_dim1", [-20.0, 25.0, np.nan, 70.0])),
        {},
        [f"{QMAP}/dynamic_v_list_dim1", "nan", "not finite"],
    ),
    "infinite q centre": (
        lambda p: _edit(p, lambda f: _replace(f, f"{QMAP}/dynamic_v_list_dim0", [np.inf, 0.01])),
        {},
        [f"{QMAP}/dynamic_v_list_dim0", "inf", "not finite"],
    ),
    "duplicate labels": (
        lambda p: _edit(p, lambda f: _replace(f, "xpcs/twotime/processed_bins", [2, 3, 3, 5])),
        {"phi": None},
        ["processed_bins", "label 3", "more than once"],
    ),
    "fractional stride": (
        lambda p: _edit(p, lambda f: _replace(f, "xpcs/twotime/config/stride_frame", 1.5)),
        {},
        ["stride_frame", "1.5", "whole number"],
    ),
    "near-duplicate phi": (None, {"phi": [25.0, 25.2]}, ["phi = 25 and 25.2", "same bin", "once"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_clear_message_and_no_output(case, good_file, tmp_path, capsys):
    spoil, overrides, words = CASES[case]
    raw = tmp_path / "bad_results.hdf"
    shutil.copy(good_file, raw)
    if spoil is not None:
        spoil(raw)
    entry = {"file": str(raw), "q": 0.01, **overrides}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"bad": entry}}))
    out = tmp_path / "results" / "bad" / "q0.01" / "dataset.h5"
    rc = cli_args.ingest(config, "bad", out)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and re.match(r"heterodyne (q-bins|ingest): error: ", err) and str(raw) in err
    for word in words:
        assert word in err, f"{case}: {word!r} missing from {err!r}"
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))


def test_unreadable_file_is_reported_as_permission_denied(good_file, tmp_path):
    raw = tmp_path / "locked_results.hdf"
    shutil.copy(good_file, raw)
    raw.chmod(0)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"locked": {"file": str(raw), "q": 0.01}}}))
    out = tmp_path / "results" / "locked" / "q_bins.json"
    command = [
        str(Path(sys.executable).with_name("heterodyne")),
        "q-bins",
        *cli_args.settings(config, dataset="locked"),
        "--output",
        str(out),
    ]
    if os.geteuid() == 0:  # root reads anything: run as an unprivileged user of a user namespace
        if shutil.which("unshare") is None:
            pytest.skip("running as root and `unshare` is not available")
        command = ["unshare", "-U", "--map-user=1000", "--map-group=1000", *command]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and err.count("\n") == 0, err
    assert err.startswith(f"heterodyne q-bins: error: {raw}: permission denied") and "copy the file again" not in err
    assert not out.parent.exists()
