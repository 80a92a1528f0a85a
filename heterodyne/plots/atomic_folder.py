"""Atomic output folder: fill a temporary folder beside the target, swap it in on success."""

import contextlib
import os
import shutil
from pathlib import Path

from heterodyne.atomic import write_failure
from heterodyne.errors import OutputError


@contextlib.contextmanager
def atomic_folder(path):
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    On any exception the temporary folder is deleted and an existing ``path`` is left as it was,
    so a failed step never leaves a half-written figure set; an OSError (a full disk) becomes an
    OutputError naming ``path``.
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as err:
        raise OutputError(write_failure(final, err)) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
