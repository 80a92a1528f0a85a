"""One-time cuts of the two-time map: c2(t1, t1 + lag) against lag at a few ages t1.

For age index i and lag index k >= 1 (lag = k dt, s): data c2_data[i, i + k] (valid elements
only) as points, model c2_model[i, i + k] as a line. Ages are ``n_ages`` indices evenly spaced
over the first three quarters of the time axis, i_m = round(m * 0.75 (N - 1) / (n_ages - 1)),
so every cut keeps at least N/4 lags.
"""

import numpy as np

from heterodyne.plots.style import DATA_COLOR, NLSQ_COLOR, panel_grid, render_caption, save_figure

PANEL_SIZE = (4.0, 3.2)
MAX_COLUMNS = 3


def age_indices(n_times, n_ages):
    """Row indices of the ages: evenly spaced over [0, 0.75 (N - 1)], rounded, unique."""
    if n_ages == 1:
        return np.array([0])
    return np.unique(np.round(np.linspace(0.0, 0.75 * (n_times - 1), n_ages)).astype(int))


def cut(c2, valid, i):
    """(lag indices k >= 1, values c2[i, i + k], valid[i, i + k]) along row i."""
    k = np.arange(1, c2.shape[-1] - i)
    return k, c2[i, i + k], valid[i, i + k]


def draw_cut_panel(ax, t, dt, data, model, valid, ages, age_label="t1 = {:.3g} s"):
    """Cuts of one angle at row indices ``ages`` into ``ax``: data points, model lines (shaded
    from dark, first age, to light) labelled ``age_label.format(t1)``; ``data``/``model``/``valid``
    are (N, N); log lag axis."""
    shades = np.linspace(0.15, 0.85, len(ages))
    for shade, i in zip(shades, ages, strict=True):
        k, values, ok = cut(data, valid, i)
        _, fitted, _ = cut(model, valid, i)
        lag = k * dt
        ax.plot(lag[ok], values[ok], "o", ms=2.5, color=DATA_COLOR, alpha=1.0 - 0.6 * shade)
        ax.plot(lag, fitted, "-", lw=1.2, color=NLSQ_COLOR, alpha=1.0 - 0.6 * shade, label=age_label.format(t[i]))
    ax.set_xscale("log")


def draw_cuts(t, dt, data, model, valid, phi, ages):
    """Figure with one panel per angle; ``data``/``model``/``valid`` are (n_phi, N, N)."""
    fig, axes = panel_grid(len(phi), PANEL_SIZE, MAX_COLUMNS)
    for a, ax in enumerate(axes):
        draw_cut_panel(ax, t, dt, data[a], model[a], valid[a], ages)
        ax.set_xlabel("lag t2 - t1 (s)")
        ax.set_ylabel("c2")
        ax.set_title(f"phi = {phi[a]:g} deg")
        if a == 0:
            ax.legend(frameon=False, title="points: data, lines: NLSQ")
    return fig


def write_one_time_cuts(outdir, dataset, nlsq, n_ages, dataset_name, provenance):
    """The ``one_time_cuts`` figure; returns its PNG path."""
    ages = age_indices(len(dataset.t), n_ages)
    fig = draw_cuts(dataset.t, dataset.dt, dataset.c2, nlsq.c2_model, dataset.valid, dataset.phi, ages)
    caption = render_caption("one_time_cuts", dataset=dataset_name, ages=", ".join(f"{dataset.t[i]:.4g}" for i in ages))
    return save_figure(fig, outdir, "one_time_cuts", caption, provenance)
