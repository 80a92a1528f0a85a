"""Suite-wide settings: float64 JAX; a persistent compilation cache inside the checkout for the
processes the tests start."""

import gc
import os
from pathlib import Path

import pytest

os.environ.setdefault("HETERODYNE_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "jax"))
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

from heterodyne.jax_config import configure_jax  # noqa: E402

configure_jax()  # float64 and the cache folder, before any test module computes with JAX

# The suite's own process does not write the persistent cache (the CLI subprocesses and workflow jobs it
# starts still do): after ~140 tests and hundreds of compilations in one process, serialising an
# executable for the cache segfaulted (jax 0.12, XLA CPU) in two full runs, never in a file run alone.
jax.config.update("jax_enable_compilation_cache", False)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module. Hundreds of them in one process
    (the CMC modules compile large samplers) made a later XLA compilation segfault in full runs."""
    yield
    jax.clear_caches()
    gc.collect()
