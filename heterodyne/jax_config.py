"""JAX settings of a heterodyne process: float64 and a persistent compilation cache.

Importing the package changes no JAX setting; each entry point calls :func:`configure_jax` once,
before its first JAX computation: the ``heterodyne`` command (:func:`heterodyne.cli.main`),
``tests/conftest.py`` and every script under ``benchmarks/`` that computes with JAX.
"""

import os

import jax

#: compiles shorter than this [s] are not written to the persistent cache
CACHE_MIN_COMPILE_TIME_S = 0.5


def configure_jax():
    """Turn on float64 (``jax_enable_x64``) and JAX's persistent compilation cache in
    ``$HETERODYNE_JAX_CACHE``, else ``<current folder>/.cache/jax`` (the workflow sets the
    variable, so all its jobs reuse the kernels compiled by earlier ones)."""
    jax.config.update("jax_enable_x64", True)
    jax.config.update(
        "jax_compilation_cache_dir", os.environ.get("HETERODYNE_JAX_CACHE", os.path.join(os.getcwd(), ".cache", "jax"))
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_TIME_S)
