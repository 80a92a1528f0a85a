"""Bad input to `heterodyne ingest`: one clear message, exit status 2, no output written."""

import shutil

import h5py
import numpy as np
import pytest
from data_fixtures import write_test_file

from heterodyne.cli import main

MAPS = "xpcs/twotime/correlation_map"


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
    "no layout": (lambda p: _edit(p, lambda f: [f.__delitem__(k) for k in list(f)]), {},
                  ["neither APS-U", "legacy"]),
    "no maps": (lambda p: _edit(p, lambda f: f.__delitem__(MAPS)), {}, ["no correlation maps", MAPS]),
    "empty map group": (lambda p: _edit(p, lambda f: [f[MAPS].__delitem__(k) for k in list(f[MAPS])]), {},
                        ["no correlation maps"]),
    "unequal shapes": (lambda p: _edit(p, lambda f: _replace(f, f"{MAPS}/c2_00002", np.ones((15, 15), "f4"))),
                       {}, ["unequal shapes", "(15, 15)", "(20, 20)"]),
    "non-square": (lambda p: _edit(p, lambda f: _replace(f, f"{MAPS}/c2_00002", np.ones((20, 15), "f4"))),
                   {}, ["c2_00002", "(20, 15)", "square"]),
    "bins vs maps": (lambda p: _edit(p, lambda f: f.__delitem__(f"{MAPS}/c2_00004")), {},
                     ["processed_bins", "4 bins", "3 maps"]),
    "q not present": (None, {"q": 0.5}, ["q = 0.5", "outside", "0.01"]),
    "phi not present": (None, {"phi": [45.0]}, ["phi = 45", "not present", "-20, 25, 70"]),
    "empty selection": (None, {"frames": [10, 10]}, ["frames", "selects 0 rows"]),
    "window out of range": (None, {"frames": [0, 25]}, ["[0, 25)", "out of range", "20 rows"]),
    "dt missing": (lambda p: _edit(p, lambda f: f.__delitem__("entry/instrument/detector_1/frame_time")),
                   {}, ["frame_time", "dt cannot be computed"]),
    "dt zero": (lambda p: _edit(p, lambda f: _replace(f, "entry/instrument/detector_1/frame_time", 0.0)),
                {}, ["dt = ", "must be > 0"]),
    "all-NaN map": (lambda p: _edit(p, lambda f: _replace(f, f"{MAPS}/c2_00003",
                                                           np.full((20, 20), np.nan, "f4"))),
                    {"q": 0.01}, ["label 4", "all NaN"]),
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
    config.write_text("datasets:\n  bad: {" + ", ".join(f"{k}: {v}" for k, v in entry.items()) + "}\n")
    out = tmp_path / "results" / "dataset.h5"
    rc = main(["ingest", "--config", str(config), "--dataset", "bad", "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("heterodyne ingest: error: ") and str(raw) in err
    for word in words:
        assert word in err, f"{case}: {word!r} missing from {err!r}"
    assert not out.exists() and not (out.parent.exists() and any(out.parent.iterdir()))
