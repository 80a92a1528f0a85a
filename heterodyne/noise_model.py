"""Noise of a two-time map computed from speckle frames: element variance and covariance.

A map from P pixels is C2_ij = <K_i K_j>_pix / (<K_i>_pix <K_j>_pix). With the intensity
fluctuations of frame i treated as Gaussian (Isserlis' theorem), two elements covary as

    Cov(C2_ij, C2_kl) = kappa * (K_ik K_jl + K_il K_jk),          kappa ~ 1 / P (dimensionless),

with the kernel K the map itself less its baseline: K_ik = c2_ik - offset for i != k, and on the
diagonal K_ii = raw c2_ii - offset (speckle contrast plus shot noise, the bump the correlator
writes on the diagonal). So an element's variance kappa (K_ii K_jj + K_ij^2) grows with c2 (near
the diagonal), every element of row i shares frame i's fluctuation (K_ii K_jl, large while j and l
lie within a correlation time), and elements without a shared frame are correlated only through
K_ik K_jl between frames close in time. Independent Gaussian noise is the other model:
Cov = sigma^2 delta.

Estimation from one map, no truth (``estimate_noise``):

* levels: L(k) = median over valid elements at lag k >= 1, minus the offset; D_i = the raw
  diagonal minus the offset, smoothed by a running median over DIAGONAL_WINDOW frames. The kernel
  of the weights is K_ik = L(|i - k|) (i != k), K_ii = D_i.
* second differences along the diagonal direction d_ij = e_ij - 2 e_i+1,j+1 + e_i+2,j+2 (the signal
  cancels) and mixed ones m_ij = e_ij - e_i+1,j - e_i,j+1 + e_i+1,j+1 (additive frame effects cancel
  too). Their expected squares follow from the covariance above (kappa times a known sum) or are
  6 sigma^2 and 4 sigma^2 for independent noise. The measured ratio sum m^2 / sum d^2 is compared
  with both models' predictions; the nearer (in log) is chosen, so maps with independent noise keep
  the constant-sigma model (ratio 2/3) and speckle maps, whose neighbouring elements share
  frames, get the speckle model (a smaller ratio).
* kappa = sum d^2 / sum E[d^2] / kappa over the inlier differences (|d| within OUTLIER_CUT robust
  sd of the median, as for sigma).

The spread per lag, sqrt(mean d^2 / 6) at each lag k (c2 units), measured and as the chosen model
predicts, is kept for the report.
"""

from dataclasses import dataclass, replace

import numpy as np

#: Gaussian consistency factor of the median absolute deviation
MAD_TO_SIGMA = 1.4826
#: second differences further than this many robust standard deviations from the median are outliers
OUTLIER_CUT = 5.0
#: frames in the running median that smooths the raw diagonal
DIAGONAL_WINDOW = 9
#: (a, b, c) coefficients of the diagonal and mixed second differences over element offsets
DIAGONAL_STEPS = (((0, 0), 1.0), ((1, 1), -2.0), ((2, 2), 1.0))
MIXED_STEPS = (((0, 0), 1.0), ((1, 0), -1.0), ((0, 1), -1.0), ((1, 1), 1.0))


@dataclass(frozen=True)
class AngleNoise:
    """Noise model of one map. ``model`` "independent": every element has sd ``sigma`` [c2 units].
    "speckle": Cov(C2_ij, C2_kl) = kappa (K_ik K_jl + K_il K_jk) with K_ii = ``diagonal_level`` (N,)
    and K_ik = ``lag_level``[|i - k|] (N,) [c2 units]; ``sigma`` is then the rms element sd over the
    valid pairs. ``lag_spread`` and ``lag_spread_model`` (N,) [c2 units]: sqrt(mean d^2 / 6) of the
    diagonal second differences at each lag, measured and predicted (NaN where a lag has none)."""

    model: str
    sigma: float
    kappa: float
    diagonal_level: np.ndarray
    lag_level: np.ndarray
    lag_spread: np.ndarray
    lag_spread_model: np.ndarray

    def pair_sigma(self, rows, cols):
        """Standard deviation [c2 units] of the elements (rows, cols), rows != cols."""
        if self.model == "independent":
            return np.full(np.shape(rows), self.sigma)
        return np.sqrt(
            self.kappa * element_variance(self.diagonal_level, self.lag_level, np.asarray(rows), np.asarray(cols))
        )


def independent_noise(sigma, n):
    """The constant-sigma :class:`AngleNoise` of an N-frame map (no spread measured)."""
    nothing = np.full(n, np.nan)
    return AngleNoise("independent", float(sigma), float("nan"), nothing, nothing, nothing, np.full(n, sigma))


def lag_levels(c2, valid, offset):
    """L(k) = median of the valid elements at lag k minus ``offset``, (N,); L(0) = NaN (the
    kernel takes the diagonal from the raw diagonal instead; stored as 0)."""
    n = c2.shape[-1]
    levels = np.full(n, np.nan)
    for k in range(1, n):
        values = np.diagonal(c2, k)[np.diagonal(valid, k)]
        if values.size:
            levels[k] = np.median(values) - offset
    return levels


def smoothed_diagonal(raw_diagonal, offset):
    """Running median (DIAGONAL_WINDOW frames, truncated at the ends, NaN ignored) of the raw
    diagonal minus ``offset``, (N,)."""
    n, half = len(raw_diagonal), DIAGONAL_WINDOW // 2
    windows = [raw_diagonal[max(0, i - half) : i + half + 1] for i in range(n)]
    return np.array([np.nanmedian(w) if np.isfinite(w).any() else np.nan for w in windows]) - offset


def kernel(diagonal_level, lag_level, i, k):
    """K_ik of the speckle model for index arrays i, k (broadcast): D_i on the diagonal, else
    L(|i - k|)."""
    return np.where(i == k, diagonal_level[i], lag_level[np.abs(i - k)])


def element_variance(diagonal_level, lag_level, rows, cols):
    """Var(C2_ij) / kappa = K_ii K_jj + K_ij^2 at the pairs (rows, cols)."""
    return diagonal_level[rows] * diagonal_level[cols] + lag_level[np.abs(cols - rows)] ** 2


def difference_moment(steps, diagonal_level, lag_level, rows, cols):
    """E[(sum_s a_s e(rows + di_s, cols + dj_s))^2] / kappa under the speckle model, per pair."""
    total = np.zeros(rows.shape)
    for (di, dj), a in steps:
        for (ei, ej), b in steps:
            i1, j1, i2, j2 = rows + di, cols + dj, rows + ei, cols + ej
            total += (
                a
                * b
                * (
                    kernel(diagonal_level, lag_level, i1, i2) * kernel(diagonal_level, lag_level, j1, j2)
                    + kernel(diagonal_level, lag_level, i1, j2) * kernel(diagonal_level, lag_level, j1, i2)
                )
            )
    return total


def _differences(c2, valid, steps, min_lag):
    """Values of the difference ``steps`` anchored at every pair (i, j), j - i >= min_lag, whose
    elements are all valid and off the diagonal; returns (values, rows, cols)."""
    n = c2.shape[-1]
    span = max(max(di, dj) for (di, dj), _ in steps)
    rows, cols = np.triu_indices(n - span, min_lag)
    ok = np.ones(rows.shape, bool)
    values = np.zeros(rows.shape)
    for (di, dj), a in steps:
        ok &= valid[rows + di, cols + dj] & (rows + di != cols + dj)
        values += a * c2[rows + di, cols + dj]
    return values[ok], rows[ok], cols[ok]


def _inliers(values, scale):
    """Mask of |values / scale - median| <= OUTLIER_CUT robust sd."""
    z = values / scale
    deviation = np.abs(z - np.median(z))
    return deviation <= OUTLIER_CUT * MAD_TO_SIGMA * np.median(deviation)


def _spread_per_lag(values, lags, n):
    """sqrt(mean values / 6) at each lag, (n,), NaN where a lag has none."""
    total, count = np.bincount(lags, values, n), np.bincount(lags, None, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(total / count / 6.0)


def estimate_angle_noise(c2, valid):
    """Constant sigma [c2 units] of one symmetric map (N, N) for independent element noise:
    Var d = 6 sigma^2 for the diagonal second differences d of its valid off-diagonal elements, so
    sigma = sd(d over the inliers) / sqrt(6) (outliers: beyond OUTLIER_CUT robust sd, the robust sd
    being 1.4826 * MAD, the Gaussian-consistent median absolute deviation)."""
    d = _differences(c2, valid, DIAGONAL_STEPS, 1)[0]
    if d.size < 2:
        raise ValueError(f"too few valid off-diagonal elements ({d.size}) to estimate the noise")
    inliers = d[_inliers(d, 1.0)]
    sigma = float(np.std(inliers) / np.sqrt(6.0)) if inliers.size > 1 else 0.0
    if not sigma > 0:
        raise ValueError("the noise estimate is 0 (the map is constant along its diagonals)")
    return sigma


def estimate_noise(c2, valid, raw_diagonal, offset, sigma_independent):
    """:class:`AngleNoise` of one symmetric map (N, N) (see the module docstring).
    ``sigma_independent`` is the constant-sigma estimate of the map (c2 units); ``raw_diagonal``
    (N,) the map's diagonal as written by the correlator, or None (then "independent")."""
    n = c2.shape[-1]
    d, rows, cols = _differences(c2, valid, DIAGONAL_STEPS, 1)
    lags = cols - rows
    independent = replace(independent_noise(sigma_independent, n), lag_spread=_spread_per_lag(d**2, lags, n))
    if raw_diagonal is None or not np.all(np.isfinite(raw_diagonal)):
        return independent
    lag_level = lag_levels(c2, valid, offset)
    diagonal_level = smoothed_diagonal(np.asarray(raw_diagonal, float), offset)
    lag_level[0] = 0.0
    if not (np.all(np.isfinite(lag_level)) and np.all(diagonal_level > 0)):
        return independent
    expected_d = difference_moment(DIAGONAL_STEPS, diagonal_level, lag_level, rows, cols)
    keep = _inliers(d, np.sqrt(np.maximum(expected_d, 1e-300)))
    m, m_rows, m_cols = _differences(c2, valid, MIXED_STEPS, 2)
    expected_m = difference_moment(MIXED_STEPS, diagonal_level, lag_level, m_rows, m_cols)
    keep_m = _inliers(m, np.sqrt(np.maximum(expected_m, 1e-300)))
    measured = np.mean(m[keep_m] ** 2) / np.mean(d[keep] ** 2)
    speckle_ratio = np.mean(expected_m[keep_m]) / np.mean(expected_d[keep])
    if abs(np.log(measured / speckle_ratio)) >= abs(np.log(measured / (4.0 / 6.0))):
        return independent
    kappa = float(np.sum(d[keep] ** 2) / np.sum(expected_d[keep]))
    all_rows, all_cols = np.triu_indices(n, 1)
    ok = valid[all_rows, all_cols]
    variance = kappa * element_variance(diagonal_level, lag_level, all_rows[ok], all_cols[ok])
    return AngleNoise(
        "speckle",
        float(np.sqrt(np.mean(variance))),
        kappa,
        diagonal_level,
        lag_level,
        independent.lag_spread,
        _spread_per_lag(kappa * expected_d, lags, n),
    )
