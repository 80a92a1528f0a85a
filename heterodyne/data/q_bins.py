"""The q bins of one dataset entry: which bins of the file are analysed, and the folder of each.

Every selected bin becomes its own job chain (ingest -> weight -> fit_nlsq -> cmc -> figures ->
report) with results in ``results/<dataset>/<folder>/``. The folder name shows q: ``q`` followed
by q [1/A] with 4 significant digits (e.g. ``q0.0071``), with more digits where two bins of the
file would otherwise share a name. ``heterodyne q-bins`` writes the list to
``results/<dataset>/q_bins.json``, which the workflow reads to create the per-q jobs and
``heterodyne ingest`` reads to find the bin of its folder.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from heterodyne.atomic import atomic_output
from heterodyne.data.dataset import count_usable
from heterodyne.data.selection import choose_q_indices, select_dataset
from heterodyne.errors import InputError
from heterodyne.json_record import read_json_record

#: significant digits of q in a folder name (more where names would collide)
FOLDER_DIGITS = 4


@dataclass(frozen=True)
class QBin:
    """One analysed q bin: results ``folder`` name, ``index`` into the file's q bins, bin centre
    ``q`` [1/A], the number of angles ``n_angles`` selected at it and of usable points
    ``n_points`` (:func:`heterodyne.data.dataset.usable`: pairs i < j, valid and finite, over the
    angles and frame window selected), which sets the number of CMC shards unless
    cmc.num_shards is given."""

    folder: str
    index: int
    q: float
    n_angles: int
    n_points: int


def folder_names(q_values):
    """``q<value>`` for each of ``q_values`` [1/A] (all bins of a file), with the fewest
    significant digits (at least FOLDER_DIGITS) that make every name distinct."""
    for digits in range(FOLDER_DIGITS, 18):
        names = [f"q{value:.{digits}g}" for value in q_values]
        if len(set(names)) == len(names):
            return names
    raise ValueError(f"q bins {list(q_values)} are not distinct")


def select_q_bins(cfile, q=None, q_index=None, phi=None, frames=None):
    """The :class:`QBin` list of a dataset entry's ``q``/``q_index``/``phi``/``frames`` in ``cfile``
    (:class:`~heterodyne.data.aps.CorrelationFile`), in increasing q. ``phi`` must be present at
    every selected bin. Each bin's maps are read (as `heterodyne ingest` selects them) to count
    its usable points."""
    names = folder_names(cfile.q_bins)
    bins = []
    for i in choose_q_indices(cfile, q=q, q_index=q_index):
        dataset = select_dataset(cfile, None, q_index=i, phi=phi, frames=frames)  # source hash not kept
        bins.append(
            QBin(
                folder=names[i],
                index=int(i),
                q=float(cfile.q_bins[i]),
                n_angles=len(dataset.phi),
                n_points=count_usable(dataset.c2, dataset.valid),
            )
        )
    return bins


def save_q_bins(path, bins, provenance):
    """Write q_bins.json: {"bins": [QBin fields], "provenance": ...}, atomically."""
    record = {"bins": [asdict(b) for b in bins], "provenance": provenance}
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")


def load_q_bins(path):
    """The :class:`QBin` list of a q_bins.json."""
    record = read_json_record(path, ("bins",), "q-bins")
    try:
        return [QBin(**entry) for entry in record["bins"]]
    except TypeError as err:
        raise InputError(f"{path}: malformed 'bins' entry ({err}); re-run `heterodyne q-bins`") from None


def find_q_bin(bins, folder, path):
    """The bin of results folder ``folder`` among ``bins`` (read from ``path``)."""
    for entry in bins:
        if entry.folder == folder:
            return entry
    raise InputError(
        f"{path}: no q bin '{folder}'; the selected bins are "
        f"{', '.join(b.folder for b in bins)}; re-run `heterodyne q-bins`"
    )
