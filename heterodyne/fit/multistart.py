"""Latin-hypercube starting points over the bounds of the free parameters."""

import numpy as np
from scipy.stats import qmc


def latin_hypercube_starts(lower, upper, n_starts, seed):
    """``n_starts`` points (n_starts, n_free): one in each of n_starts equal slices of every
    parameter's [lower, upper] interval (random pairing across parameters; reproducible by
    ``seed``). Bounds must be finite."""
    lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    unit = qmc.LatinHypercube(d=len(lower), seed=seed).random(n_starts)
    return qmc.scale(unit, lower, upper)
