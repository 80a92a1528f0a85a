"""NLSQ against CMC estimates, one row of panels per parameter group.

Both estimates are shown as 90 % intervals: NLSQ value +/- 1.645 se (Gaussian, se as saved in
nlsq.json), CMC posterior median with its 5 and 95 % quantiles. A fixed parameter shows its NLSQ
value only. The last row puts per-angle contrast and offset against phi (deg).
"""

import numpy as np

from heterodyne.plots.style import CMC_COLOR, NLSQ_COLOR, new_figure, render_caption, save_figure

#: z of the central 90 % of a normal distribution
Z90 = 1.6448536269514722
GROUPS = (
    ("reference transport", ("D0_ref", "alpha_ref", "D_offset_ref")),
    ("sample transport", ("D0_sample", "alpha_sample", "D_offset_sample")),
    ("velocity", ("v0", "beta", "v_offset")),
    ("sample fraction", ("f0", "f1", "f2", "f3")),
    ("flow angle", ("phi0",)),
)
PANEL_SIZE = (2.6, 2.2)
N_COLUMNS = 4


def nlsq_interval(value, stderr):
    """(value, lower, upper) of the 90 % Gaussian interval; a fixed parameter (se None) has none."""
    if stderr is None:
        return value, value, value
    return value, value - Z90 * stderr, value + Z90 * stderr


def _interval_point(ax, x, estimate, color, label):
    centre, low, high = estimate
    ax.errorbar(
        [x], [centre], yerr=[[centre - low], [high - centre]], fmt="o", color=color, capsize=3, ms=4, label=label
    )


def draw_comparison(nlsq, cmc, phi):
    """Figure: parameter groups by row, then the scaling row (contrast, offset against phi)."""
    nrows = len(GROUPS) + 1
    fig, axes = new_figure(PANEL_SIZE[0] * N_COLUMNS, PANEL_SIZE[1] * nrows, nrows=nrows, ncols=N_COLUMNS)
    for row, (group, names) in enumerate(GROUPS):
        for col in range(N_COLUMNS):
            ax = axes[row, col]
            if col >= len(names):
                ax.set_axis_off()
                continue
            name = names[col]
            _interval_point(ax, 0, nlsq_interval(nlsq.value(name), nlsq.stderr(name)), NLSQ_COLOR, "NLSQ")
            if name in cmc.draws:
                _interval_point(ax, 1, cmc.interval(name), CMC_COLOR, "CMC")
            else:
                ax.text(1, nlsq.value(name), "fixed", ha="center", va="center", fontsize=7)
            ax.set_xlim(-0.6, 1.6)
            ax.set_xticks([0, 1], ["NLSQ", "CMC"])
            ax.set_title(name if col else f"{group}\n{name}")
    dodge = 0.015 * max(np.ptp(phi), 10.0)  # deg, keeps the two estimates of one angle apart
    for col, kind in enumerate(("contrast", "offset")):
        ax = axes[-1, col]
        values = getattr(nlsq, kind)
        se = np.array([np.nan if s is None else s for s in nlsq.record[f"{kind}_stderr"]], dtype=np.float64)
        ax.errorbar(phi - dodge, values, yerr=Z90 * se, fmt="o", color=NLSQ_COLOR, capsize=3, ms=4, label="NLSQ")
        names = [f"{kind}_{a}" for a in range(len(phi))]
        if all(name in cmc.draws for name in names):
            centre, low, high = np.array([cmc.interval(name) for name in names]).T
            ax.errorbar(
                phi + dodge,
                centre,
                yerr=[centre - low, high - centre],
                fmt="o",
                color=CMC_COLOR,
                capsize=3,
                ms=4,
                label="CMC",
            )
        ax.set_xlabel("phi (deg)")
        ax.set_title(f"scaling\n{kind}" if col == 0 else kind)
        ax.legend(frameon=False)
    for col in range(2, N_COLUMNS):
        axes[-1, col].set_axis_off()
    return fig


def write_nlsq_vs_cmc(outdir, dataset, nlsq, cmc, dataset_name, provenance):
    """The ``nlsq_vs_cmc`` figure; returns its PNG path."""
    fig = draw_comparison(nlsq, cmc, np.asarray(dataset.phi, dtype=np.float64))
    return save_figure(fig, outdir, "nlsq_vs_cmc", render_caption("nlsq_vs_cmc", dataset=dataset_name), provenance)
