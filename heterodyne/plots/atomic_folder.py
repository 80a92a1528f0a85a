"""Atomic output folder: fill a temporary folder beside the target, swap it in on success."""

import contextlib
import os
import shutil
from pathlib import Path


@contextlib.contextmanager
def atomic_folder(path):
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    On any exception the temporary folder is deleted and an existing ``path`` is left as it was,
    so a failed step never leaves a half-written figure set.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
