"""Read the saved fit results (workflow contract) that figures and report are drawn from.

* ``nlsq.json`` + ``nlsq.h5`` -> :class:`NlsqResult` (values in canonical order, per-angle
  contrast/offset, the model maps c2_model (n_phi, N, N)).
* ``cmc/summary.json`` + ``cmc/combined.h5`` + ``cmc/shard_{k}.h5`` -> :class:`CmcResult`
  (combined draws (n_draws,) per sampled quantity, shard draws (n_chains, n_draws)).

Nothing is refitted: restyling a figure only re-reads these files. A missing file or key raises
:class:`~heterodyne.errors.InputError` naming the file, the key and the step to re-run.
"""

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from heterodyne.core.parameters import PARAMETER_NAMES
from heterodyne.errors import InputError
from heterodyne.json_record import read_json_record

_NLSQ_KEYS = ("converged", "termination", "parameters", "phi", "contrast", "contrast_stderr",
              "offset", "offset_stderr", "reduced_chi2", "reduced_chi2_per_angle")
_SUMMARY_KEYS = ("parameters", "shards", "num_shards", "flagged_shards", "limits")


@dataclass(frozen=True)
class NlsqResult:
    """NLSQ fit as saved by ``heterodyne fit-nlsq`` (``record`` is the nlsq.json dict)."""

    record: dict
    values: np.ndarray
    c2_model: np.ndarray

    @property
    def parameters(self):
        return self.record["parameters"]

    def value(self, name):
        return float(self.parameters[name]["value"])

    def stderr(self, name):
        """Standard error of a free parameter; None for a fixed one."""
        se = self.parameters[name]["stderr"]
        return None if se is None else float(se)

    @property
    def contrast(self):
        return np.asarray(self.record["contrast"], dtype=np.float64)

    @property
    def offset(self):
        return np.asarray(self.record["offset"], dtype=np.float64)

    @property
    def reduced_chi2_per_angle(self):
        return np.asarray(self.record["reduced_chi2_per_angle"], dtype=np.float64)


def load_nlsq(json_path, h5_path, n_phi=None):
    """Read nlsq.json and nlsq.h5; check both describe the 14 parameters (and ``n_phi`` angles)."""
    record = read_json_record(json_path, _NLSQ_KEYS, "fit-nlsq")
    missing = [name for name in PARAMETER_NAMES if name not in record["parameters"]]
    if missing:
        raise InputError(f"{json_path}: 'parameters' lacks {', '.join(missing)}; all 14 physics "
                         "parameters are expected, re-run `heterodyne fit-nlsq`")
    try:
        with h5py.File(h5_path, "r") as f:
            c2_model = f["c2_model"][()]
    except (OSError, KeyError) as err:
        raise InputError(f"{h5_path}: cannot read dataset 'c2_model' ({err}); re-run "
                         "`heterodyne fit-nlsq`") from err
    values = np.array([record["parameters"][name]["value"] for name in PARAMETER_NAMES], dtype=np.float64)
    result = NlsqResult(record=record, values=values, c2_model=np.asarray(c2_model, dtype=np.float64))
    if n_phi is not None:
        for key in ("phi", "contrast", "offset", "reduced_chi2_per_angle"):
            if len(record[key]) != n_phi:
                raise InputError(f"{json_path}: '{key}' has {len(record[key])} entries, the dataset "
                                 f"has {n_phi} angles; re-run `heterodyne fit-nlsq` on this dataset")
        if c2_model.ndim != 3 or c2_model.shape[0] != n_phi:
            raise InputError(f"{h5_path}: 'c2_model' has shape {c2_model.shape}, expected "
                             f"({n_phi}, N, N); re-run `heterodyne fit-nlsq` on this dataset")
    return result


def read_draws(path, rerun):
    """{name: array} of every dataset in the group ``draws`` of a CMC HDF5 file."""
    try:
        with h5py.File(path, "r") as f:
            return {name: np.asarray(f["draws"][name][()], dtype=np.float64) for name in f["draws"]}
    except (OSError, KeyError) as err:
        raise InputError(f"{path}: cannot read group 'draws' ({err}); re-run `heterodyne {rerun}`") from err


def read_combined_draws(combined_h5):
    """{name: (n_draws,)} combined draws of combined.h5; InputError if no physics parameter."""
    draws = read_draws(combined_h5, "cmc-combine")
    if not any(name in draws for name in PARAMETER_NAMES):
        raise InputError(f"{combined_h5}: group 'draws' holds no physics parameter (expected some of "
                         f"{', '.join(PARAMETER_NAMES)}); re-run `heterodyne cmc-combine`")
    return draws


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


def shard_paths_beside(combined_h5, num_shards):
    """``shard_{k}.h5`` for k < num_shards in the folder of ``combined.h5`` (workflow layout)."""
    folder = Path(combined_h5).parent
    return [folder / f"shard_{k}.h5" for k in range(num_shards)]


def load_cmc(summary_path, combined_h5):
    """Read summary.json, combined.h5 and the shard files beside combined.h5."""
    summary = read_json_record(summary_path, _SUMMARY_KEYS, "cmc-combine")
    draws = read_combined_draws(combined_h5)
    listed = sorted(entry.get("shard") for entry in summary["shards"])
    if listed != list(range(int(summary["num_shards"]))):
        raise InputError(f"{summary_path}: 'shards' lists shards {listed}, expected 0 to "
                         f"{int(summary['num_shards']) - 1} ('num_shards'); re-run `heterodyne cmc-combine`")
    shards = [read_draws(path, "cmc-shard")
              for path in shard_paths_beside(combined_h5, int(summary["num_shards"]))]
    return CmcResult(summary=summary, draws=draws, shard_draws=shards)
