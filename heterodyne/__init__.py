"""heterodyne: two-component heterodyne XPCS model fitted to APS 8-ID-I two-time correlations.

Importing the package turns on JAX float64 (``jax_enable_x64``) and points JAX's persistent
compilation cache at ``$HETERODYNE_JAX_CACHE`` (default ``<cwd>/.cache/jax``) so every process of a
workflow run reuses compiled kernels.
"""

import os

import jax

__version__ = "0.1.0"

jax.config.update("jax_enable_x64", True)
jax.config.update(
    "jax_compilation_cache_dir",
    os.environ.get("HETERODYNE_JAX_CACHE", os.path.join(os.getcwd(), ".cache", "jax")),
)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
