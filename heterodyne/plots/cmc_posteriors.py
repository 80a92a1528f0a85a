"""Consensus Monte Carlo figures: corner plot, per-shard traces, shard vs combined posteriors.

* corner (plain matplotlib): histogram of each sampled physics parameter on the diagonal, the
  pairwise scatter of thinned combined draws below it, NLSQ values as red lines;
* ``cmc_trace_shard{k}``: each sampled physics parameter against draw index, one line per chain;
* ``cmc_shards``: density histograms of every shard's draws (chains pooled) beside the combined
  posterior, per sampled physics parameter.
"""

import numpy as np

from heterodyne.plots.physics_curves import thin_indices
from heterodyne.plots.style import CMC_COLOR, NLSQ_COLOR, new_figure, panel_grid, render_caption, save_figure

CORNER_CELL_IN = 1.3
TRACE_SIZE = (8.0, 1.1)  # width, height per parameter row (in)
SHARD_PANEL_SIZE = (3.0, 2.4)
MAX_COLUMNS = 4
N_BINS = 30


def corner_size(n_params):
    """Corner figure (width, height) in inches: CORNER_CELL_IN per parameter, at least 4 in."""
    side = max(4.0, CORNER_CELL_IN * n_params)
    return side, side


def draw_corner(names, samples, reference):
    """Lower-triangular grid; ``samples`` {name: (n,)}, ``reference`` {name: NLSQ value}."""
    n = len(names)
    fig, axes = new_figure(*corner_size(n), nrows=n, ncols=n)
    for row, y_name in enumerate(names):
        for col, x_name in enumerate(names):
            ax = axes[row, col]
            if col > row:
                ax.set_axis_off()
                continue
            if col == row:
                ax.hist(samples[x_name], bins=N_BINS, color=CMC_COLOR, histtype="stepfilled", alpha=0.6)
                ax.axvline(reference[x_name], color=NLSQ_COLOR, lw=1)
                ax.set_yticks([])
            else:
                ax.plot(samples[x_name], samples[y_name], ".", ms=1.5, color=CMC_COLOR, alpha=0.35)
                ax.axvline(reference[x_name], color=NLSQ_COLOR, lw=0.8)
                ax.axhline(reference[y_name], color=NLSQ_COLOR, lw=0.8)
                ax.plot(reference[x_name], reference[y_name], "s", ms=3, color=NLSQ_COLOR)
            if row == n - 1:
                ax.set_xlabel(x_name)
                ax.tick_params(axis="x", labelrotation=45)
            else:
                ax.set_xticklabels([])
            if col == 0 and row > 0:
                ax.set_ylabel(y_name)
            elif col != row:
                ax.set_yticklabels([])
    return fig


def trace_size(n_params):
    """Trace figure (width, height) in inches: TRACE_SIZE[1] per parameter row + 0.6 for labels."""
    return TRACE_SIZE[0], TRACE_SIZE[1] * n_params + 0.6


def draw_traces(names, chains_by_name, title):
    """One row per parameter, one line per chain; ``chains_by_name`` {name: (n_chains, n_draws)}."""
    fig, axes = new_figure(*trace_size(len(names)), nrows=len(names), sharex=True)
    fig.suptitle(title)
    for ax, name in zip(axes[:, 0], names, strict=True):
        for chain in np.atleast_2d(chains_by_name[name]):
            ax.plot(chain, lw=0.6, alpha=0.8)
        ax.set_ylabel(name)
    axes[-1, 0].set_xlabel("draw")
    return fig


def draw_shard_posteriors(names, shard_draws, combined, reference):
    """Per parameter: each shard's density histogram (steps) and the combined one (filled)."""
    fig, axes = panel_grid(len(names), SHARD_PANEL_SIZE, MAX_COLUMNS)
    for name, ax in zip(names, axes, strict=True):
        pooled = [np.ravel(shard[name]) for shard in shard_draws]
        edges = np.histogram_bin_edges(np.concatenate(pooled + [combined[name]]), bins=N_BINS)
        for k, values in enumerate(pooled):
            ax.hist(values, bins=edges, density=True, histtype="step", lw=0.9, label=f"shard {k}")
        ax.hist(
            combined[name],
            bins=edges,
            density=True,
            histtype="stepfilled",
            color=CMC_COLOR,
            alpha=0.35,
            label="combined",
        )
        ax.axvline(reference[name], color=NLSQ_COLOR, lw=1, label="NLSQ")
        ax.set_xlabel(name)
        ax.set_yticks([])
    axes[0].legend(frameon=False, fontsize=6)
    return fig


def write_cmc_figures(outdir, nlsq, cmc, n_draws, dataset_name, provenance):
    """Corner, one trace figure per shard and the shard comparison; returns the PNG paths."""
    names = cmc.physics_names
    reference = {name: nlsq.value(name) for name in names}
    rows = thin_indices(len(cmc.draws[names[0]]), n_draws)
    thinned = {name: cmc.draws[name][rows] for name in names}
    fixed = [name for name in nlsq.parameters if name not in cmc.draws]
    paths = [
        save_figure(
            draw_corner(names, thinned, reference),
            outdir,
            "cmc_corner",
            render_caption("cmc_corner", dataset=dataset_name, n_draws=len(rows), fixed=", ".join(fixed) or "none"),
            provenance,
        )
    ]
    shard_info = {entry["shard"]: entry for entry in cmc.summary["shards"]}
    for k, draws in enumerate(cmc.shard_draws):
        info = shard_info[k]
        n_chains, n_per_chain = np.atleast_2d(draws[names[0]]).shape
        caption = render_caption(
            "cmc_trace",
            dataset=dataset_name,
            shard=k,
            n_chains=n_chains,
            n_draws=n_per_chain,
            divergences=info["divergences"],
            max_r_hat=f"{info['max_r_hat']:.4f}",
            flagged=f"yes ({'; '.join(info['flag_reasons'])})" if info["flagged"] else "no",
        )
        figure = draw_traces(names, draws, f"{dataset_name}: CMC shard {k}")
        paths.append(save_figure(figure, outdir, f"cmc_trace_shard{k:02d}", caption, provenance))
    caption = render_caption(
        "cmc_shards",
        dataset=dataset_name,
        num_shards=len(cmc.shard_draws),
        flagged=", ".join(str(k) for k in cmc.summary["flagged_shards"]) or "none",
    )
    paths.append(
        save_figure(
            draw_shard_posteriors(names, cmc.shard_draws, cmc.draws, reference),
            outdir,
            "cmc_shards",
            caption,
            provenance,
        )
    )
    return paths
