"""Suite-wide settings: float64 JAX with a persistent compilation cache inside the checkout."""

import os
from pathlib import Path

os.environ.setdefault("HETERODYNE_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "jax"))
os.environ.setdefault("MPLBACKEND", "Agg")

import heterodyne  # noqa: E402,F401  (enables x64 and the cache before any test imports jax code)
