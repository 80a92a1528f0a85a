"""Per-angle noise model and initial contrast/offset estimated from the c2 maps themselves.

Noise: :mod:`heterodyne.noise_model` (a constant sigma, or the speckle model whose element sd grows
with c2 and whose elements covary through shared frames), chosen per map from the map itself.

Levels [c2 units]. L(k) = median of the valid elements at lag k. With c2 = offset + contrast * B and
B -> 1 as the lag -> 0 and B -> 0 at long lags:

    offset   = median of the valid elements with lag >= (1 - long_lag_fraction) * (N - 1)
    contrast = (2 L(1) - L(2)) - offset        (linear extrapolation of L to lag 0)

Both are clipped into the fits' ``SCALING_BOUNDS`` (inset by 1e-3 of the range) so they are valid
starting points. The offset estimate assumes the correlation has decayed at the longest lags.
"""

import numpy as np

from heterodyne.core.parameters import SCALING_BOUNDS
from heterodyne.noise_model import estimate_angle_noise, estimate_noise, independent_noise
from heterodyne.weighting.weights_file import AngleWeights


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
    """:class:`AngleWeights` of every angle of ``dataset``: the noise model estimated ("robust":
    :func:`heterodyne.noise_model.estimate_noise`, from the map and its raw diagonal) or sigma 1
    ("uniform"); contrast/offset estimated in both cases."""
    if method not in ("robust", "uniform"):
        raise ValueError(f"method must be 'robust' or 'uniform', got {method!r}")
    n = len(dataset.t)
    diagonals = dataset.raw_diagonal if dataset.raw_diagonal is not None else [None] * len(dataset.phi)
    levels, noise = [], []
    for phi, m, ok, diagonal in zip(dataset.phi, dataset.c2, dataset.valid, diagonals, strict=True):
        try:
            contrast, offset = estimate_contrast_offset(m, ok, long_lag_fraction)
            levels.append((contrast, offset))
            noise.append(
                estimate_noise(m, ok, diagonal, offset, estimate_angle_noise(m, ok))
                if method == "robust"
                else independent_noise(1.0, n)
            )
        except ValueError as err:
            raise ValueError(f"phi = {phi:g} deg: {err}") from err
    return AngleWeights(
        phi=np.asarray(dataset.phi, float),
        sigma=np.array([a.sigma for a in noise]),
        contrast=np.array([c for c, _ in levels]),
        offset=np.array([o for _, o in levels]),
        method=method,
        noise=tuple(noise),
    )
