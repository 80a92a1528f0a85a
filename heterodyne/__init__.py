"""heterodyne: two-component heterodyne XPCS model fitted to APS 8-ID-I two-time correlations.

Importing the package (or any module of it) changes no JAX setting: the entry points turn on
float64 and the compilation cache with :func:`heterodyne.jax_config.configure_jax`.
"""

__version__ = "0.1.0"
