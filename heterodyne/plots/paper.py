"""Paper figures: vector PDFs one journal column wide, drawn from saved results only.

Kinds (one PDF per planned figure, :mod:`heterodyne.plots.paper_plan`):

* ``maps``: two-time maps c2(t1, t2), one row per chosen angle, columns data | NLSQ model |
  (data - model) / sigma (limit +/- figures.residual_limit); data and model share one c2 scale,
  the 0.5-99.5 % percentiles over the shown angles' fitted elements. Maps are block-reduced to
  at least :data:`MAP_DPI` dots per inch of panel (:mod:`heterodyne.plots.c2_maps`).
* ``cuts``: one-time cuts c2(t1, t1 + lag) against lag (s, log), one panel per angle, at
  figures.cut_ages ages (points: data, lines: NLSQ).
* ``physics``: J_ref(t), J_sample(t) [A^2/s], v(t) [A/s], x_s(t) [1] at the NLSQ values (line)
  with the pointwise 5-95 % band over figures.posterior_draws combined CMC draws.
* ``cross_q``: the cross-q parameter figure of one dataset
  (:func:`heterodyne.plots.cross_q.paper_cross_q`, from every q bin's dataset.h5, nlsq.json and
  cmc/summary.json); ``study``: parameters against each dataset's label
  (:func:`heterodyne.plots.study.paper_study`, from every q bin's nlsq.json and cmc/summary.json).
  Both are called as ``function(figure_inputs, width_in)`` with ``figure_inputs`` the tuple of
  :class:`~heterodyne.plots.paper_plan.QResults` of the figure, read only the files in
  ``QResults.files`` and draw in the current rcParams (the paper style is active).

Only panel letters are drawn, no titles (the cross_q panels are titled with their parameter);
angles label the rows (maps) or sit in the panel (cuts).
"""

import copy
import math
from dataclasses import dataclass

import numpy as np

from heterodyne.cmc.draws_file import load_combined
from heterodyne.config import validate_section
from heterodyne.data.dataset import load_dataset
from heterodyne.data.selection import REQUESTED_PHI_TOLERANCE_DEG
from heterodyne.errors import InputError
from heterodyne.fit.results import load_nlsq
from heterodyne.lineage import check_lineage
from heterodyne.plots.c2_maps import map_panels, pair_sigmas, shared_limits, show_map
from heterodyne.plots.cross_q import paper_cross_q
from heterodyne.plots.one_time_cuts import age_indices, draw_cut_panel
from heterodyne.plots.paper_plan import COLUMN_WIDTH_IN, input_files, plan_figures
from heterodyne.plots.paper_style import panel_letters
from heterodyne.plots.physics_curves import CURVES, curves_with_bands, draw_curve_panel
from heterodyne.plots.study import paper_study
from heterodyne.plots.style import new_figure
from heterodyne.weighting.weights_file import check_weights_for, load_weights

#: figure kinds over several q bins -> function(figure_inputs, width_in) drawing them
ALL_BINS_DRAW = {"cross_q": paper_cross_q, "study": paper_study}
#: map images keep at least this many pixels per inch of panel (block reduction above it)
MAP_DPI = 300
#: angles shown when an entry gives none
DEFAULT_ANGLES = 2
#: axis labels of the physics curves
PHYSICS_LABELS = {
    "J_ref": r"$J_\mathrm{ref}$ (Å$^2$/s)",
    "J_sample": r"$J_\mathrm{sample}$ (Å$^2$/s)",
    "v": r"$v$ (Å/s)",
    "x_s": r"$x_s$",
}
MAP_UNITS = (r"$c_2$", r"$(c_2 - c_2^\mathrm{model})/\sigma$")


def rule_inputs(settings, results):
    """Every file ``heterodyne paper`` reads for config sections ``settings`` ({"paper",
    "datasets", "figures"} as written; defaults are filled here) under ``results``, as a workflow
    rule's input function lists them. Reads only the q_bins.json of
    :func:`~heterodyne.plots.paper_plan.datasets_used` (they must exist); the other files need not
    exist yet."""
    filled = {name: validate_section(name, copy.deepcopy(value)) for name, value in settings.items()}
    return [str(path) for path in input_files(plan_figures(filled, results))]


@dataclass
class BinData:
    """What a per-bin figure reads: dataset, weights (maps only), NLSQ result, CMC draws
    (physics only); absent parts are None."""

    dataset: object
    weights: object
    nlsq: object
    draws: dict | None


def load_bin(qres):
    """Read the files of one :class:`~heterodyne.plots.paper_plan.QResults` and check that they
    come from one run (each records the others it was made from)."""
    files = qres.files
    dataset = load_dataset(files["data"])
    weights = None
    sources = [files[role] for role in ("data", "weights") if role in files]
    check_lineage(
        {
            files["nlsq_json"]: sources,
            files["nlsq_h5"]: sources,
            **({files["weights"]: [files["data"]]} if "weights" in files else {}),
        }
    )
    if "weights" in files:
        weights = load_weights(files["weights"])
        check_weights_for(dataset, weights, files["weights"])
    nlsq = load_nlsq(files["nlsq_json"], files["nlsq_h5"], n_phi=len(dataset.phi))
    draws = load_combined(files["cmc_h5"]).flat() if "cmc_h5" in files else None
    return BinData(dataset=dataset, weights=weights, nlsq=nlsq, draws=draws)


def choose_angles(phi, requested, entry, path):
    """Indices into the data angles ``phi`` [deg] of ``requested`` (None: the first
    DEFAULT_ANGLES); InputError naming a missing angle and the available ones."""
    if requested is None:
        return list(range(min(DEFAULT_ANGLES, len(phi))))
    chosen = []
    for value in requested:
        distance = np.abs(np.asarray(phi) - value)
        if distance.min() > REQUESTED_PHI_TOLERANCE_DEG:
            raise InputError(
                f"{entry}.phi: {value:g} deg is not an angle of {path} (within "
                f"{REQUESTED_PHI_TOLERANCE_DEG} deg); available: {', '.join(f'{p:g}' for p in phi)} deg"
            )
        chosen.append(int(distance.argmin()))
    return chosen


def _label_outer(axes, xlabel, ylabel):
    """x label on the bottom row only, y label on the first column only; inner tick labels off."""
    for (r, c), ax in np.ndenumerate(axes):
        if r == axes.shape[0] - 1:
            ax.set_xlabel(xlabel)
        else:
            ax.tick_params(labelbottom=False)
        if c == 0 and ylabel:
            ax.set_ylabel(ylabel)


def draw_maps(t, dt, data, model, valid, sigma, phi, residual_limit, width_in, rc):
    """Maps figure; ``data``/``model``/``valid``/``sigma`` (n, N, N) of the n shown angles
    ``phi`` [deg]."""
    n = len(phi)
    side = (width_in - 0.75) / 3  # in; 0.75 in for the row labels and paddings
    fig, axes = new_figure(width_in, n * (side + 0.1) + 0.65, nrows=n, ncols=3, rc=rc, sharex=True, sharey=True)
    limits = shared_limits(data, model, valid)
    for r in range(n):
        panels, extent, _ = map_panels(
            t,
            dt,
            data[r],
            model[r],
            valid[r],
            sigma[r],
            residual_limit,
            limits=limits,
            max_pixels=math.ceil(side * MAP_DPI),
        )
        shown = [
            show_map(ax, image, extent, cmap, lo, hi)
            for ax, (_, image, cmap, lo, hi, _) in zip(axes[r], panels, strict=True)
        ]
        axes[r, 0].set_ylabel(f"$\\phi$ = {phi[r]:g}°\n$t_1$ (s)")
    _label_outer(axes, r"$t_2$ (s)", None)
    for columns, image, label in ((axes[:, :2], shown[0], MAP_UNITS[0]), (axes[:, 2], shown[2], MAP_UNITS[1])):
        fig.colorbar(image, ax=columns, location="bottom", label=label, fraction=0.06 / n, aspect=25)
    panel_letters(axes.flat)
    return fig


def draw_cuts(t, dt, data, model, valid, phi, ages, width_in, rc):
    """Cuts figure, one panel per angle (2 columns single width, 3 double)."""
    n = len(phi)
    ncols = min(n, 2 if width_in < COLUMN_WIDTH_IN["double"] else 3)
    nrows = math.ceil(n / ncols)
    legend_cols = min(len(ages), 2 if width_in < COLUMN_WIDTH_IN["double"] else 4)
    legend_in = 0.05 + 0.17 * math.ceil(len(ages) / legend_cols)  # legend below the panels
    fig, axes = new_figure(
        width_in, nrows * 0.75 * width_in / ncols + 0.2 + legend_in, nrows=nrows, ncols=ncols, rc=rc, sharex=True
    )
    for a, ax in enumerate(axes.flat):
        if a >= n:
            ax.set_axis_off()
            continue
        draw_cut_panel(ax, t, dt, data[a], model[a], valid[a], ages, age_label=r"$t_1$ = {:.3g} s")
        ax.text(0.97, 0.95, f"$\\phi$ = {phi[a]:g}°", transform=ax.transAxes, ha="right", va="top")
    _label_outer(axes, r"lag $t_2 - t_1$ (s)", r"$c_2$")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=legend_cols, frameon=False)
    panel_letters(list(axes.flat)[:n])
    return fig


def draw_physics(t, best, band, width_in, rc):
    """Physics figure: J_ref, J_sample, v, x_s against t (2 x 2 single width, 1 x 4 double)."""
    ncols = 2 if width_in < COLUMN_WIDTH_IN["double"] else 4
    nrows = len(CURVES) // ncols
    fig, axes = new_figure(
        width_in, nrows * 0.75 * width_in / ncols + 0.3, nrows=nrows, ncols=ncols, rc=rc, sharex=True
    )
    for ax, name in zip(axes.flat, CURVES, strict=True):
        draw_curve_panel(ax, t, best[name], band[name])
        ax.set_ylabel(PHYSICS_LABELS[name])
    _label_outer(axes, r"$t$ (s)", None)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=2, frameon=False)
    panel_letters(axes.flat)
    return fig


def draw_plan(plan, figures, rc, loaded):
    """(Figure, angles shown [deg] or None) of one plan; ``figures`` the figures section,
    ``loaded`` a cache {(folder, roles): BinData} filled here."""
    if plan.kind in ALL_BINS_DRAW:
        return ALL_BINS_DRAW[plan.kind](plan.bins, plan.width_in), None
    (qres,) = plan.bins
    key = qres.files["data"].parent, tuple(qres.files)
    if key not in loaded:
        loaded[key] = load_bin(qres)
    bin_data = loaded[key]
    d, nlsq = bin_data.dataset, bin_data.nlsq
    if plan.kind == "physics":
        t, best, band, _ = curves_with_bands(d.t[0], d.t[-1], nlsq.values, bin_data.draws, figures["posterior_draws"])
        return draw_physics(t, best, band, plan.width_in, rc), None
    a = choose_angles(d.phi, plan.phi, plan.entry, qres.files["data"])
    if plan.kind == "maps":
        sigma = pair_sigmas(bin_data.weights, len(d.t))
        fig = draw_maps(
            d.t,
            d.dt,
            d.c2[a],
            nlsq.c2_model[a],
            d.valid[a],
            sigma[a],
            d.phi[a],
            figures["residual_limit"],
            plan.width_in,
            rc,
        )
    else:
        ages = age_indices(len(d.t), figures["cut_ages"])
        fig = draw_cuts(d.t, d.dt, d.c2[a], nlsq.c2_model[a], d.valid[a], d.phi[a], ages, plan.width_in, rc)
    return fig, [float(p) for p in d.phi[a]]
