"""Per-angle heatmaps of c2(t1, t2): data | NLSQ model | normalised residual.

Residual map: R_ij = (c2_data,ij - c2_model,ij) / sigma_ij (dimensionless; sigma_ij the element's sd
from the angle's noise model, :meth:`heterodyne.weighting.weights_file.AngleWeights.pair_sigma`), NaN on the diagonal
i == j (never fitted) and where the data element is invalid. Data and model share one colour scale
[lo, hi] = the 0.5 and 99.5 % percentiles of both maps' off-diagonal valid elements; the residual
scale is symmetric, +/- ``residual_limit``. Axes are absolute times t in s (pixel k spans
t_k +/- dt/2).

Maps larger than :data:`MAX_PIXELS` per side are shown block-reduced by the integer factor
f = ceil(N / MAX_PIXELS) (a panel is ~800 pixels wide at 200 dpi, so nothing visible is lost and
the PDF stays small): c2 as the mean of the used elements of each f x f block, the residual as
sum(R) / sqrt(n_used), which stays N(0, 1) where the model is right. Blocks with no used element
are NaN.
"""

import matplotlib
import numpy as np

from heterodyne.plots.style import C2_CMAP, RESIDUAL_CMAP, new_figure, render_caption, save_figure

FIGSIZE = (12.0, 4.0)
MAX_PIXELS = 800


def fit_mask(valid):
    """True where an element is off-diagonal and valid: the elements a fit uses (both triangles)."""
    n = valid.shape[-1]
    return valid & ~np.eye(n, dtype=bool)


def normalised_residual(data, model, valid, sigma):
    """(data - model) / sigma with NaN where :func:`fit_mask` is False; (N, N)."""
    return np.where(fit_mask(valid), (data - model) / sigma, np.nan)


def block_factor(n, max_pixels=MAX_PIXELS):
    """Integer reduction factor f = ceil(n / max_pixels) (1 for maps that fit)."""
    return -(-n // max_pixels)


def _blocks(image, f):
    """(n_b, n_b, f * f) view of the f x f blocks of ``image``, NaN-padded to a multiple of f."""
    n = image.shape[0]
    n_b = -(-n // f)
    padded = np.full((n_b * f, n_b * f), np.nan)
    padded[:n, :n] = image
    return padded.reshape(n_b, f, n_b, f).transpose(0, 2, 1, 3).reshape(n_b, n_b, f * f)


def block_mean(image, f):
    """Mean of the finite elements of each f x f block; NaN where a block has none."""
    blocks = _blocks(image, f)
    count = np.sum(np.isfinite(blocks), axis=-1)
    total = np.nansum(blocks, axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def block_residual(residual, f):
    """sum / sqrt(count) of the finite residuals of each f x f block (unit variance kept)."""
    blocks = _blocks(residual, f)
    count = np.sum(np.isfinite(blocks), axis=-1)
    return np.where(count > 0, np.nansum(blocks, axis=-1) / np.sqrt(np.maximum(count, 1)), np.nan)


def shared_limits(data, model, valid):
    """Common (lo, hi) colour limits of data and model: 0.5/99.5 % percentiles of their used
    elements."""
    used = fit_mask(valid)
    values = np.concatenate([data[used], model[used]])
    lo, hi = np.percentile(values, [0.5, 99.5])
    return float(lo), float(hi)


def map_panels(t, dt, data, model, valid, sigma, residual_limit, limits=None, max_pixels=MAX_PIXELS):
    """The three block-reduced images (at most ``max_pixels`` per side) of one angle and their
    common extent (s).

    Returns (panels, extent, f): panels = [(name, image, cmap, vmin, vmax, colour-bar label)] for
    data, NLSQ model and residual; ``limits`` (lo, hi) sets the c2 scale (default
    :func:`shared_limits` of this angle); f the block factor."""
    lo, hi = shared_limits(data, model, valid) if limits is None else limits
    used = fit_mask(valid)
    f = block_factor(len(t), max_pixels)
    panels = [
        ("data", block_mean(np.where(used, data, np.nan), f), C2_CMAP, lo, hi, "c2"),
        ("NLSQ model", block_mean(np.where(used, model, np.nan), f), C2_CMAP, lo, hi, "c2"),
        (
            "residual",
            block_residual(normalised_residual(data, model, valid, sigma), f),
            RESIDUAL_CMAP,
            -residual_limit,
            residual_limit,
            "(data - model) / sigma",
        ),
    ]
    # block k covers rows k f .. k f + f - 1 (the last block may be padded past t[-1])
    n_b = -(-len(t) // f)
    edge = t[0] - dt / 2 + n_b * f * dt
    return panels, (t[0] - dt / 2, edge, t[0] - dt / 2, edge), f


def show_map(ax, image, extent, cmap, vmin, vmax):
    """Draw one map (t1 on the vertical axis, origin lower, invalid elements grey); returns the
    AxesImage."""
    return ax.imshow(
        image,
        origin="lower",
        extent=extent,
        vmin=vmin,
        vmax=vmax,
        aspect="equal",
        cmap=matplotlib.colormaps[cmap].with_extremes(bad="0.75"),
    )


def pair_sigmas(weights, n):
    """(n_phi, n, n) element sd sigma_ij of every angle's noise model."""
    rows, cols = (index.ravel() for index in np.indices((n, n)))
    return weights.pair_sigma(rows, cols).reshape(-1, n, n)


def draw_c2_maps(t, dt, data, model, valid, sigma, residual_limit, title):
    """Figure with the three heatmaps of one angle; returns (fig, (lo, hi))."""
    fig, axes = new_figure(*FIGSIZE, ncols=3)
    panels, extent, f = map_panels(t, dt, data, model, valid, sigma, residual_limit)
    for ax, (name, image, cmap, vmin, vmax, label) in zip(axes[0], panels, strict=True):
        shown = show_map(ax, image, extent, cmap, vmin, vmax)
        ax.set_title(name)
        ax.set_xlabel("t2 (s)")
        ax.set_ylabel("t1 (s)")
        fig.colorbar(shown, ax=ax, shrink=0.85, label=label)
    fig.suptitle(title if f == 1 else f"{title} ({f} x {f} blocks)")
    return fig, (panels[0][3], panels[0][4])


def write_c2_maps(outdir, dataset, weights, nlsq, residual_limit, dataset_name, provenance):
    """One figure per angle, ``c2_maps_phi{index:02d}``; returns the PNG paths."""
    paths = []
    chi2 = nlsq.reduced_chi2_per_angle
    sigma = pair_sigmas(weights, len(dataset.t))
    for a, phi in enumerate(dataset.phi):
        title = f"{dataset_name}: phi = {phi:g} deg, reduced chi2 = {chi2[a]:.3f}"
        fig, (lo, hi) = draw_c2_maps(
            dataset.t, dataset.dt, dataset.c2[a], nlsq.c2_model[a], dataset.valid[a], sigma[a], residual_limit, title
        )
        model = "independent" if weights.noise is None else weights.noise[a].model
        noise = (
            f"sigma = {weights.sigma[a]:.3g} for every element"
            if model == "independent"
            else f"sigma_ij of the speckle noise model (larger where c2 is larger; rms {weights.sigma[a]:.3g})"
        )
        caption = render_caption(
            "c2_maps",
            dataset=dataset_name,
            phi=f"{phi:g}",
            q=f"{dataset.q:g}",
            c2_low=f"{lo:.4g}",
            c2_high=f"{hi:.4g}",
            noise=noise,
            residual_limit=f"{residual_limit:g}",
            reduced_chi2=f"{chi2[a]:.4f}",
        )
        paths.append(save_figure(fig, outdir, f"c2_maps_phi{a:02d}", caption, provenance))
    return paths
