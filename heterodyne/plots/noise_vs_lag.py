"""Noise against lag: the spread of each map measured per lag against its noise model's prediction.

Quantity (c2 units): s(k) = sqrt(mean d^2 / 6) over the diagonal second differences
d = e(i, i+k) - 2 e(i+1, i+1+k) + e(i+2, i+2+k) at lag k >= 1 (lag k dt, s), as stored in
weights.json per angle (:class:`heterodyne.noise_model.AngleNoise`): ``lag_spread`` measured on the
map, ``lag_spread_model`` predicted by the chosen model (independent noise: s(k) = sigma, the
element sd, at every lag; speckle: sqrt(kappa E[d^2] / 6) from the map's levels, so elements are
noisier where c2 is larger and neighbouring elements that share frames covary). To keep N lags
readable, both are reduced to the rms over the lags of each of :data:`N_BINS` logarithmic bins of
k in [1, N) (each lag weighted equally):

    rms_b = sqrt(mean of s(k)^2 over the lags k of bin b with a finite s(k))

plotted at the geometric mean lag of those k (times dt, s); bins without a finite s(k) are left out.
Weights without a noise model (older files) mean one constant sigma per angle and no measured
spread: those panels show the constant-sigma line only and say that nothing was measured.
"""

import numpy as np

from heterodyne.noise_model import independent_noise
from heterodyne.plots.style import DATA_COLOR, NLSQ_COLOR, panel_grid, render_caption, save_figure

PANEL_SIZE = (4.0, 3.2)
MAX_COLUMNS = 3
#: logarithmic lag bins of the plotted rms
N_BINS = 20


def binned_rms(spread, n_bins=N_BINS):
    """(centre lags [frames], rms [c2 units]) of ``spread`` (N,) over ``n_bins`` logarithmic bins
    of the lags k = 1..N-1: k is in bin floor(n_bins log k / log N), i.e. N^(b / n_bins) <= k <
    N^((b + 1) / n_bins); only bins with a finite value are returned."""
    n = len(spread)
    lags = np.arange(1, n)
    values = np.asarray(spread, float)[1:]
    bins = np.floor(n_bins * np.log2(lags) / np.log2(n)).astype(int)
    centres, rms = [], []
    for b in range(n_bins):
        ok = (bins == b) & np.isfinite(values)
        if ok.any():
            centres.append(np.exp(np.mean(np.log(lags[ok]))))
            rms.append(np.sqrt(np.mean(values[ok] ** 2)))
    return np.array(centres), np.array(rms)


def model_label(noise):
    """ "independent, sigma = ..." or "speckle, kappa = ..." of one :class:`AngleNoise`."""
    if noise.model == "speckle":
        return f"speckle, kappa = {noise.kappa:.3g}"
    return f"independent, sigma = {noise.sigma:.3g}"


def angle_noises(weights, n_times):
    """Per-angle :class:`AngleNoise` of ``weights``; a file without noise models gives the
    constant sigma of each angle with nothing measured (:func:`independent_noise`)."""
    if weights.noise is not None:
        return weights.noise
    return tuple(independent_noise(sigma, n_times) for sigma in weights.sigma)


def draw_noise_vs_lag(dt, phi, noises):
    """Figure with one panel per angle: measured rms per lag bin (points) and the model's (line)."""
    fig, axes = panel_grid(len(phi), PANEL_SIZE, MAX_COLUMNS)
    for a, ax in enumerate(axes):
        noise = noises[a]
        lag, measured = binned_rms(noise.lag_spread)
        model_lag, predicted = binned_rms(noise.lag_spread_model)
        ax.plot(model_lag * dt, predicted, "-", lw=1.4, color=NLSQ_COLOR, label="model")
        if measured.size:
            ax.plot(lag * dt, measured, "o", ms=3.5, color=DATA_COLOR, label="measured")
        else:
            ax.text(0.5, 0.5, "spread not measured", transform=ax.transAxes, ha="center", color=DATA_COLOR)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel("lag t2 - t1 (s)")
        ax.set_ylabel("spread sqrt(<d^2> / 6) (c2)")
        ax.set_title(f"phi = {phi[a]:g} deg: {model_label(noise)}")
        if a == 0:
            ax.legend(frameon=False, title=f"rms per log lag bin ({N_BINS} bins)")
    return fig


def write_noise_vs_lag(outdir, dataset, weights, dataset_name, provenance):
    """The ``noise_vs_lag`` figure; returns its PNG path."""
    noises = angle_noises(weights, len(dataset.t))
    fig = draw_noise_vs_lag(dataset.dt, dataset.phi, noises)
    unmeasured = [
        f"{phi:g}" for phi, noise in zip(dataset.phi, noises, strict=True) if not np.isfinite(noise.lag_spread).any()
    ]
    note = (
        f"No spread was measured at phi = {', '.join(unmeasured)} deg (weights without a noise model, or "
        "uniform weights): those panels show the constant sigma only."
        if unmeasured
        else ""
    )
    caption = render_caption(
        "noise_vs_lag",
        dataset=dataset_name,
        n_bins=N_BINS,
        models="; ".join(
            f"phi = {phi:g} deg: {model_label(noise)}" for phi, noise in zip(dataset.phi, noises, strict=True)
        ),
        unmeasured=note,
    )
    return save_figure(fig, outdir, "noise_vs_lag", caption, provenance)
