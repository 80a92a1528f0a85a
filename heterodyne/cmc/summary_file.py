"""The CMC summary files: the one module that writes and reads them (JSON, written atomically).

Per-q ``results/<dataset>/<q folder>/cmc/summary.json`` (``heterodyne cmc-combine``,
:func:`summary_record`): ``parameters`` {quantity: {mean, sd, q05, q50, q95, r_hat, ess_bulk,
ess_tail}} of the combined draws (physical units); ``parametric`` (Gaussian consensus);
``combined`` (R-hat/ESS criteria of the combined draws: flagged, flag_reasons); ``shards`` (one
diagnostics entry per shard, ``shard`` its index); ``num_shards`` K; ``n_points``;
``flagged_shards``; ``nlsq_comparison`` and ``undetermined`` (:mod:`heterodyne.cmc.compare`);
``noise_adjustment`` (sd factor per quantity or null, :mod:`heterodyne.cmc.noise_adjustment`);
``limits`` (r_hat, ess, e_bfmi, undetermined_sd_ratio); ``n_chains``, ``n_draws``; ``provenance``.
A reader requires :data:`SUMMARY_KEYS` and shards 0..K-1 listed once each.

Joint multi-q ``results/<dataset>/joint_q/cmc/summary.json`` (``heterodyne cmc-joint-q``):
``parameters`` {name: {mean, sd, q05, q50, q95, r_hat, ess_bulk, ess_tail}} of the shared
parameters and of each bin's nuisance ``name@folder`` (physical units); ``parametric`` {shared
name: {mean, sd}} (Gaussian consensus); ``shared_parameters``; ``q_bins`` [{folder, q,
cmc_flagged}]; ``agreement`` {chi2, dof, p, agree}; ``skewed``; ``nlsq_comparison`` (against the
joint NLSQ fit, :mod:`heterodyne.cmc.compare`); ``combined`` (R-hat and ESS criteria of the joint
draws); ``flagged`` and ``flag_reasons`` (any per-q CMC flagged, per-q posteriors that disagree
or are skewed, the criteria); ``n_chains``, ``n_draws``, ``provenance``.
A reader requires :data:`JOINT_SUMMARY_KEYS`.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from heterodyne.atomic import atomic_output
from heterodyne.errors import InputError
from heterodyne.json_record import JointRecord, read_json_record

#: the keys every reader of a per-q summary.json may rely on
SUMMARY_KEYS = (
    "parameters",
    "combined",
    "shards",
    "num_shards",
    "flagged_shards",
    "nlsq_comparison",
    "undetermined",
    "limits",
    "provenance",
)
#: the keys every reader of the joint posterior's summary.json may rely on
JOINT_SUMMARY_KEYS = ("parameters", "shared_parameters", "flagged", "flag_reasons")


def _write(path, record):
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def summary_record(
    *,
    parameters,
    parametric,
    combined,
    shards,
    num_shards,
    n_points,
    nlsq_comparison,
    undetermined,
    noise_adjustment,
    limits,
    n_chains,
    n_draws,
    provenance,
):
    """The per-q summary.json dict (module docstring); ``flagged_shards`` from the ``shards`` entries."""
    return {
        "parameters": parameters,
        "parametric": parametric,
        "combined": combined,
        "shards": shards,
        "num_shards": int(num_shards),
        "n_points": int(n_points),
        "flagged_shards": [entry["shard"] for entry in shards if entry["flagged"]],
        "nlsq_comparison": nlsq_comparison,
        "undetermined": undetermined,
        "noise_adjustment": noise_adjustment,
        "limits": limits,
        "n_chains": int(n_chains),
        "n_draws": int(n_draws),
        "provenance": provenance,
    }


def save_summary(path, record):
    """Write a per-q summary.json (a :func:`summary_record`)."""
    _write(path, record)


def save_joint_summary(path, record):
    """Write the joint posterior's summary.json."""
    _write(path, record)


@dataclass(frozen=True)
class CmcSummary:
    """A per-q summary.json as read back: its ``path`` and ``record``, the checked dict."""

    path: Path
    record: dict

    @property
    def flagged(self):
        """Whether the combined posterior is flagged."""
        return bool(self.record["combined"].get("flagged", False))

    @property
    def num_shards(self):
        return int(self.record["num_shards"])


def read_summary(path):
    """:class:`CmcSummary` of the per-q summary.json at ``path``; InputError naming the file, the
    missing key and `heterodyne cmc-combine` otherwise."""
    record = read_json_record(path, SUMMARY_KEYS, "cmc-combine")
    listed = sorted(entry.get("shard") for entry in record["shards"])
    if listed != list(range(int(record["num_shards"]))):
        raise InputError(
            f"{path}: 'shards' lists shards {listed}, expected 0 to "
            f"{int(record['num_shards']) - 1} ('num_shards'); re-run `heterodyne cmc-combine`"
        )
    return CmcSummary(path=Path(path), record=record)


class JointCmcSummary(JointRecord):
    """The joint posterior's summary.json as read back: its ``path`` and ``record``."""

    @property
    def flagged(self):
        """Whether the joint posterior is flagged."""
        return bool(self.record["flagged"])

    @property
    def flag_reasons(self):
        return list(self.record["flag_reasons"])


def read_joint_summary(path):
    """:class:`JointCmcSummary` of the joint posterior's summary.json at ``path``; InputError naming
    the file, the missing key and `heterodyne cmc-joint-q` otherwise."""
    return JointCmcSummary(path=Path(path), record=read_json_record(path, JOINT_SUMMARY_KEYS, "cmc-joint-q"))
