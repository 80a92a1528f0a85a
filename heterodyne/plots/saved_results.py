"""The saved CMC result that figures are drawn from: ``cmc/summary.json`` + ``cmc/combined.h5`` +
``cmc/shard_{k}.h5`` -> :class:`CmcResult` (combined draws (n_draws,) per sampled quantity, shard
draws (n_chains, n_draws)), read through the files' owners (:mod:`heterodyne.cmc.summary_file`,
:mod:`heterodyne.cmc.draws_file`). The NLSQ result comes from :func:`heterodyne.fit.results.load_nlsq`.

Nothing is refitted: restyling a figure only re-reads these files. A missing file or key raises
:class:`~heterodyne.errors.InputError` naming the file, the key and the step to re-run.
"""

from dataclasses import dataclass

import numpy as np

from heterodyne.cmc.draws_file import load_combined, load_shard_draws, shard_paths_beside
from heterodyne.cmc.summary_file import read_summary
from heterodyne.core.parameters import PARAMETER_NAMES


@dataclass(frozen=True)
class CmcResult:
    """Consensus Monte Carlo result: summary.json dict, combined and per-shard draws."""

    summary: dict
    draws: dict
    shard_draws: list

    @property
    def physics_names(self):
        """Sampled physics parameters in canonical order (fixed ones have no draws)."""
        return [name for name in PARAMETER_NAMES if name in self.draws]

    def interval(self, name):
        """(median, q05, q95) of a sampled quantity: from summary.json when it lists ``name``,
        else the 5/50/95 % quantiles of its combined draws."""
        entry = self.summary["parameters"].get(name)
        if entry is not None:
            return float(entry["q50"]), float(entry["q05"]), float(entry["q95"])
        q05, q50, q95 = np.quantile(self.draws[name], [0.05, 0.5, 0.95])
        return float(q50), float(q05), float(q95)


def load_cmc(summary_path, combined_h5):
    """Read summary.json, combined.h5 and the shard files beside combined.h5."""
    summary = read_summary(summary_path)
    draws = load_combined(combined_h5).flat()
    shards = [load_shard_draws(path) for path in shard_paths_beside(combined_h5, summary.num_shards)]
    return CmcResult(summary=summary.record, draws=draws, shard_draws=shards)
