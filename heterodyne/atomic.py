"""Atomic output: write to a temporary file (or folder) beside the target, rename on success.

Any OSError while writing (a full disk, a quota, no permission) becomes an
:class:`~heterodyne.errors.OutputError` naming the output. HDF5 files are written through a Python
file object (:func:`hdf5_writer`, :func:`atomic_hdf5`), so the HDF5 library never meets a failed write itself (after one
it is left in a state that crashes the interpreter at exit).
"""

import contextlib
import errno
import os
import shutil
from pathlib import Path

import h5py

from heterodyne.errors import OutputError

_ADVICE = {
    errno.ENOSPC: "free space on that file system and re-run",
    errno.EDQUOT: "free space within your quota and re-run",
    errno.EACCES: "make the folder writable and re-run",
    errno.EROFS: "write the results to a writable file system",
}


def write_failure(path, err):
    """One-line message for an OSError ``err`` raised while writing ``path``."""
    reason = (err.strerror or str(err)).lower()
    return f"{path}: cannot write the output ({reason}); {_ADVICE.get(err.errno, 'check the file system')}"


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched, so a failed
    step never leaves a partial output for Snakemake (or a user) to mistake for a result.
    """
    final = Path(path)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, final)
    except OSError as err:
        raise OutputError(write_failure(final, err)) from err
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def hdf5_writer(path):
    """Yield a new h5py.File at ``path`` that HDF5 writes through a Python file object."""
    with open(path, "w+b") as handle, h5py.File(handle, "w") as f:
        yield f


@contextlib.contextmanager
def atomic_hdf5(path):
    """Yield a new h5py.File that becomes ``path`` on success (see :func:`atomic_output`)."""
    with atomic_output(path) as tmp, hdf5_writer(tmp) as f:
        yield f


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
