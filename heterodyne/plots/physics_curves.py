"""The physics over time: J_ref(t), J_sample(t) [A^2/s], v(t) [A/s], x_s(t) [1].

Curves come from :mod:`heterodyne.core.physics` (transport_rate, velocity_rate,
sample_fraction; formulas there) on a grid of 400 times spanning the data, at the NLSQ values
(line) and at thinned CMC draws (band = pointwise 5 % and 95 % quantiles over draws). A parameter
without draws (fixed in the fits) takes its NLSQ value in every draw.
"""

import numpy as np

from heterodyne.core import physics
from heterodyne.core.parameters import INDEX
from heterodyne.plots.style import CMC_COLOR, NLSQ_COLOR, new_figure, render_caption, save_figure

FIGSIZE = (9.0, 6.0)
N_TIMES = 400

#: curve name -> (axis label, kernel function, parameter names in argument order)
CURVES = {
    "J_ref": ("J_ref(t) (A^2/s)", physics.transport_rate, ("D0_ref", "alpha_ref", "D_offset_ref")),
    "J_sample": ("J_sample(t) (A^2/s)", physics.transport_rate, ("D0_sample", "alpha_sample", "D_offset_sample")),
    "v": ("v(t) (A/s)", physics.velocity_rate, ("v0", "beta", "v_offset")),
    "x_s": ("x_s(t)", physics.sample_fraction, ("f0", "f1", "f2", "f3")),
}


def thin_indices(total, n):
    """min(n, total) indices evenly spaced over range(total) (deterministic thinning)."""
    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))


def parameter_draws(nlsq_values, draws, n_draws):
    """(n, 14) parameter sets: NLSQ values, with every sampled column replaced by thinned draws."""
    sampled = [name for name in INDEX if name in draws]
    total = len(draws[sampled[0]])
    rows = thin_indices(total, n_draws)
    matrix = np.tile(np.asarray(nlsq_values, dtype=np.float64), (len(rows), 1))
    for name in sampled:
        matrix[:, INDEX[name]] = draws[name][rows]
    return matrix


def evaluate_curves(params, t):
    """{curve: (n_sets, n_t) array} for parameter sets ``params`` (n_sets, 14) on times t (n_t,)."""
    params = np.atleast_2d(params)
    curves = {}
    for name, (_, function, arg_names) in CURVES.items():
        args = [params[:, INDEX[arg], None] for arg in arg_names]
        curves[name] = np.asarray(function(t[None, :], *args))
    return curves


def bands(curves_at_draws):
    """{curve: (q05, q95)} pointwise over draws (axis 0)."""
    return {name: tuple(np.quantile(values, [0.05, 0.95], axis=0)) for name, values in curves_at_draws.items()}


def draw_curve_panel(ax, t, best, band):
    """One curve over time t (s): its CMC band (q05, q95) shaded and the NLSQ line ``best``."""
    low, high = band
    ax.fill_between(t, low, high, color=CMC_COLOR, alpha=0.3, lw=0, label="CMC 90 % band")
    ax.plot(t, best, color=NLSQ_COLOR, lw=1.5, label="NLSQ")


def draw_physics_curves(t, best, band):
    """2 x 2 figure; ``best`` {curve: (n_t,)} NLSQ curves, ``band`` {curve: (q05, q95)}."""
    fig, axes = new_figure(*FIGSIZE, nrows=2, ncols=2)
    for ax, (name, (label, _, _)) in zip(axes.flat, CURVES.items(), strict=True):
        draw_curve_panel(ax, t, best[name], band[name])
        ax.set_xlabel("t (s)")
        ax.set_ylabel(label)
    axes[0, 0].legend(frameon=False)
    return fig


def curves_with_bands(t_first, t_last, nlsq_values, draws, n_draws):
    """(t, best, band, n_sets): N_TIMES times (s) over [t_first, t_last], the NLSQ curves
    {curve: (n_t,)}, their CMC bands {curve: (q05, q95)} over ``n_draws`` thinned draws and the
    number of parameter sets used."""
    t = np.linspace(t_first, t_last, N_TIMES)
    best = {name: values[0] for name, values in evaluate_curves(nlsq_values, t).items()}
    sets = parameter_draws(nlsq_values, draws, n_draws)
    return t, best, bands(evaluate_curves(sets, t)), len(sets)


def write_physics_curves(outdir, dataset, nlsq, cmc, n_draws, dataset_name, provenance):
    """The ``physics_curves`` figure; returns its PNG path."""
    t, best, band, n_sets = curves_with_bands(dataset.t[0], dataset.t[-1], nlsq.values, cmc.draws, n_draws)
    fig = draw_physics_curves(t, best, band)
    caption = render_caption("physics_curves", dataset=dataset_name, n_draws=n_sets)
    return save_figure(fig, outdir, "physics_curves", caption, provenance)
