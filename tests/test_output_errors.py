"""A full disk: one line naming the output and "no space left", exit status 1, no partial file.

The disk is a 16 KiB tmpfs mounted in a private mount namespace (``unshare``), so nothing outside
the test's own process tree sees it.
"""

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cli_args
import pytest
from data_fixtures import make_dataset

from heterodyne.cli import main

HETERODYNE = str(Path(sys.executable).with_name("heterodyne"))


def _private_tmpfs_available(folder):
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=16k tmpfs "$0"', str(folder)], capture_output=True
    )
    return probe.returncode == 0


def test_full_disk_gives_one_line_and_no_partial_file(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    if not _private_tmpfs_available(full):
        pytest.skip("needs `unshare -rm` and tmpfs mounts in a user namespace")
    data, _ = make_dataset(tmp_path)  # ~60 KiB: does not fit in 16 KiB
    config = tmp_path / "config.yaml"
    config.write_text(f"datasets:\n  demo: {{file: {tmp_path / 'raw_results.hdf'}, q: 0.01}}\n")
    dataset_out, weights_out = full / "dataset.h5", full / "weights.json"
    q_bins = tmp_path / "q_bins.json"
    assert main(["q-bins", *cli_args.settings(config, dataset="demo"), "--output", str(q_bins)]) == 0
    ingest_settings = shlex.join(cli_args.settings(config, dataset="demo"))
    weight_settings = shlex.join(cli_args.settings(config, "weight"))
    # ingest fills the disk part-way (HDF5 fails while flushing); weight then meets a full disk
    script = (
        f'mount -t tmpfs -o size=16k tmpfs "{full}" || exit 99\n'
        f'"{HETERODYNE}" ingest {ingest_settings} --q-bins "{q_bins}" --q-folder q0.01 --output "{dataset_out}" '
        f'2> "{tmp_path}/ingest.err"; echo "ingest $?"\n'
        f'cat /dev/zero > "{full}/filler" 2> /dev/null; '
        f'"{HETERODYNE}" weight {weight_settings} --data "{data}" --output "{weights_out}" '
        f'2> "{tmp_path}/weight.err"; echo "weight $?"\n'
        f'rm "{full}/filler"; ls -A "{full}"\n'
    )
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    lines = proc.stdout.split()
    assert lines[:4] == ["ingest", "1", "weight", "1"], proc.stdout + proc.stderr
    assert lines[4:] == []  # neither output nor a temporary file is left on the full disk
    for step, out in (("ingest", dataset_out), ("weight", weights_out)):
        err = (tmp_path / f"{step}.err").read_text().strip()
        assert err.count("\n") == 0, err
        assert err.startswith(f"heterodyne {step}: error: {out}: cannot write") and "no space left" in err
