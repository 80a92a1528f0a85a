"""Per-angle noise sigma and initial contrast/offset estimated from the c2 maps themselves.

Noise [c2 units]. Along a diagonal direction (fixed lag j - i, consecutive ages) the model changes
slowly, so the second difference

    d_ij = c2[i, j] - 2 c2[i+1, j+1] + c2[i+2, j+2]        (i < j: three distinct off-diagonal pairs)

is noise-dominated with Var d = 6 sigma^2 for independent element noise. Robust estimate: a
first scale s = 1.4826 * MAD(d) (median absolute deviation about the median; 1.4826 makes it the
standard deviation of a Gaussian), then sigma = sd(d over |d - median(d)| <= 5 s) / sqrt(6), which
rejects outliers yet keeps the efficiency of the standard deviation. The diagonal is never used.

Levels [c2 units]. L(k) = median of the valid elements at lag k. With c2 = offset + contrast * B and
B -> 1 as the lag -> 0 and B -> 0 at long lags:

    offset   = median of the valid elements with lag >= (1 - long_lag_fraction) * (N - 1)
    contrast = (2 L(1) - L(2)) - offset        (linear extrapolation of L to lag 0)

Both are clipped into the fits' ``SCALING_BOUNDS`` (inset by 1e-3 of the range) so they are valid
starting points. The offset estimate assumes the correlation has decayed at the longest lags.
"""

import numpy as np

from heterodyne.core.parameters import SCALING_BOUNDS
from heterodyne.data.weights import AngleWeights

#: Gaussian consistency factor of the median absolute deviation
MAD_TO_SIGMA = 1.4826
#: second differences further than this many robust standard deviations from the median are outliers
OUTLIER_CUT = 5.0


def estimate_angle_noise(c2, valid):
    """Robust noise sigma [c2 units] of one symmetric map (N, N) from diagonal-direction second
    differences of its valid off-diagonal elements."""
    n = c2.shape[-1]
    d = c2[:-2, :-2] - 2.0 * c2[1:-1, 1:-1] + c2[2:, 2:]
    ok = valid[:-2, :-2] & valid[1:-1, 1:-1] & valid[2:, 2:] & np.triu(np.ones((n - 2, n - 2), bool), 1)
    values = d[ok]
    if values.size < 2:
        raise ValueError(f"too few valid off-diagonal elements ({values.size}) to estimate the noise")
    deviation = np.abs(values - np.median(values))
    inliers = values[deviation <= OUTLIER_CUT * MAD_TO_SIGMA * np.median(deviation)]
    sigma = float(np.std(inliers) / np.sqrt(6.0)) if inliers.size > 1 else 0.0
    if not sigma > 0:
        raise ValueError("the noise estimate is 0 (the map is constant along its diagonals)")
    return sigma


def _clip(value, name):
    lower, upper = SCALING_BOUNDS[name]
    inset = 1e-3 * (upper - lower)
    return float(np.clip(value, lower + inset, upper - inset))


def estimate_contrast_offset(c2, valid, long_lag_fraction=0.25):
    """(contrast, offset) initial values of one symmetric map (N, N); see the module docstring."""
    n = c2.shape[-1]

    def lag_level(k):
        diagonal, ok = np.diagonal(c2, k), np.diagonal(valid, k)
        return np.median(diagonal[ok]) if ok.any() else np.nan

    rows, cols = np.triu_indices(n, 1)
    long = (cols - rows >= (1.0 - long_lag_fraction) * (n - 1)) & valid[rows, cols]
    offset = np.median(c2[rows[long], cols[long]]) if long.any() else np.nan
    short = 2.0 * lag_level(1) - lag_level(2)
    if not np.isfinite(short):
        short = lag_level(1)
    if not (np.isfinite(offset) and np.isfinite(short)):
        raise ValueError("no valid elements at the shortest or longest lags")
    return _clip(short - offset, "contrast"), _clip(offset, "offset")


def angle_weights(dataset, method="robust", long_lag_fraction=0.25):
    """:class:`AngleWeights` of every angle of ``dataset``: sigma estimated ("robust") or 1
    ("uniform"); contrast/offset estimated in both cases."""
    if method not in ("robust", "uniform"):
        raise ValueError(f"method must be 'robust' or 'uniform', got {method!r}")
    levels, sigma = [], []
    for phi, m, ok in zip(dataset.phi, dataset.c2, dataset.valid, strict=True):
        try:
            levels.append(estimate_contrast_offset(m, ok, long_lag_fraction))
            sigma.append(estimate_angle_noise(m, ok) if method == "robust" else 1.0)
        except ValueError as err:
            raise ValueError(f"phi = {phi:g} deg: {err}") from err
    return AngleWeights(phi=np.asarray(dataset.phi, float), sigma=np.asarray(sigma),
                        contrast=np.array([c for c, _ in levels]), offset=np.array([o for _, o in levels]),
                        method=method)
