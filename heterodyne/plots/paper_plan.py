"""Which paper figures to draw and from which files: the ``paper`` config section resolved
against the results tree, before anything is read or written.

Results layout: ``<results>/<dataset>/q_bins.json`` lists the analysed q bins (increasing q) and
``<results>/<dataset>/<folder>/`` holds each bin's files. A figure entry names a dataset (null:
the first under ``datasets``) and a q bin (null: the lowest q; a folder name such as ``q0.01``;
or a q in 1/A matching a bin within :data:`Q_TOLERANCE`). A figure kind left out (null) gives
one figure from those defaults; an empty list none.

Every figure lists the exact files it reads (:data:`FILES_OF`) plus the dataset's q_bins.json
that resolved its q; :func:`input_files` gives their union, what a workflow rule lists as inputs.
Bad entries raise :class:`~heterodyne.errors.InputError` naming the entry, what is missing and
what is available.
"""

from dataclasses import dataclass
from pathlib import Path

from heterodyne.data.q_bins import load_q_bins
from heterodyne.errors import InputError

#: column widths in inches (single 85 mm, double 178 mm)
COLUMN_WIDTH_IN = {"single": 3.37, "double": 7.0}
#: width of a figure kind when neither its entry nor the section sets one
NATURAL_WIDTH = {"maps": "double", "cuts": "single", "physics": "single", "cross_q": "single", "study": "double"}
#: a q given as a number matches a bin within this relative distance
Q_TOLERANCE = 0.01
#: files of a q bin, by role, relative to its folder
ROLE_FILES = {
    "data": "dataset.h5",
    "weights": "weights.json",
    "nlsq_json": "nlsq.json",
    "nlsq_h5": "nlsq.h5",
    "cmc_json": "cmc/summary.json",
    "cmc_h5": "cmc/combined.h5",
}
#: the roles each figure kind reads (cross_q: dataset.h5 gives the bin's q and time grid)
FILES_OF = {
    "maps": ("data", "weights", "nlsq_json", "nlsq_h5"),
    "cuts": ("data", "nlsq_json", "nlsq_h5"),
    "physics": ("data", "nlsq_json", "nlsq_h5", "cmc_h5"),
    "cross_q": ("data", "nlsq_json", "cmc_json"),
    "study": ("nlsq_json", "cmc_json"),
}
PER_BIN_KINDS = ("maps", "cuts", "physics")


@dataclass(frozen=True)
class QResults:
    """One q bin's results as handed to a figure: ``dataset`` name, its config ``label`` (a
    number or None), results ``folder`` name, bin centre ``q`` [1/A] and ``files`` {role: Path}
    holding only the files the figure may read."""

    dataset: str
    label: float | None
    folder: str
    q: float
    files: dict


@dataclass(frozen=True)
class FigurePlan:
    """One PDF to write: file ``stem``, figure ``kind``, config ``entry`` path (e.g.
    ``paper.maps[0]``), width [in], the q bins it shows, requested angles [deg] (None: the
    default ones; maps and cuts only) and every input file it reads (q_bins.json first)."""

    stem: str
    kind: str
    entry: str
    width_in: float
    bins: tuple
    phi: tuple | None
    inputs: tuple


def _q_bins(results, name, datasets, entry):
    """(q_bins.json path, QBin list) of dataset ``name``; InputError if it is not configured or
    has no results."""
    if name not in datasets:
        raise InputError(f"{entry}: dataset '{name}' is not under 'datasets' (configured: {', '.join(datasets)})")
    path = Path(results) / name / "q_bins.json"
    if not path.is_file():
        have = [d for d in datasets if (Path(results) / d / "q_bins.json").is_file()]
        raise InputError(
            f"{entry}: dataset '{name}' has no results ({path} not found); datasets with "
            f"results in {results}: {', '.join(have) or 'none'}; run the workflow for "
            f"'{name}' first"
        )
    return path, load_q_bins(path)


def _find_bin(bins, q, name, path, entry):
    """The QBin of ``q`` (None: lowest q; str: folder name; number: within Q_TOLERANCE)."""
    if q is None:
        return min(bins, key=lambda b: b.q)
    if isinstance(q, str):
        found = [b for b in bins if b.folder == q]
    else:
        near = [b for b in bins if abs(b.q - q) <= Q_TOLERANCE * b.q]
        found = sorted(near, key=lambda b: abs(b.q - q))[:1]
    if not found:
        available = ", ".join(f"{b.folder} (q = {b.q:g} 1/A)" for b in sorted(bins, key=lambda b: b.q))
        raise InputError(f"{entry}.q = {q!r} is not a q bin of dataset '{name}' ({path}); available: {available}")
    return found[0]


def _q_results(results, name, datasets, q_bin, roles):
    folder = Path(results) / name / q_bin.folder
    return QResults(
        dataset=name,
        label=datasets[name].get("label"),
        folder=q_bin.folder,
        q=q_bin.q,
        files={role: folder / ROLE_FILES[role] for role in roles},
    )


def _width(kind, entry_width, section):
    return COLUMN_WIDTH_IN[entry_width or section["width"] or NATURAL_WIDTH[kind]]


def _unique(stem, taken):
    """``stem``, or ``stem_2``, ``stem_3``, ... if taken; recorded in ``taken``."""
    n, name = 1, stem
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    taken.add(name)
    return name


def _inputs(q_bins_paths, bins):
    return tuple(dict.fromkeys([*q_bins_paths, *(p for b in bins for p in b.files.values())]))


def _per_bin_plans(section, datasets, results, taken):
    first = next(iter(datasets))
    for kind in PER_BIN_KINDS:
        if section[kind] is None:
            entries = [(f"paper.{kind} (default)", {})]
        else:
            entries = [(f"paper.{kind}[{i}]", item) for i, item in enumerate(section[kind])]
        for entry, item in entries:
            name = item.get("dataset") or first
            path, bins = _q_bins(results, name, datasets, entry)
            q_bin = _find_bin(bins, item.get("q"), name, path, entry)
            qres = _q_results(results, name, datasets, q_bin, FILES_OF[kind])
            phi = item.get("phi")
            yield FigurePlan(
                stem=_unique(f"{kind}_{name}_{q_bin.folder}", taken),
                kind=kind,
                entry=entry,
                width_in=_width(kind, item.get("width"), section),
                bins=(qres,),
                phi=None if phi is None else tuple(float(p) for p in phi),
                inputs=_inputs([path], [qres]),
            )


def _all_bins(results, names, datasets, kind, entry):
    paths, bins = [], []
    for name in names:
        path, q_bins = _q_bins(results, name, datasets, entry)
        paths.append(path)
        bins += [_q_results(results, name, datasets, b, FILES_OF[kind]) for b in sorted(q_bins, key=lambda b: b.q)]
    return tuple(paths), tuple(bins)


def plan_figures(settings, results):
    """The :class:`FigurePlan` list of validated ``settings`` ({"paper", "datasets", ...}) on the
    results tree ``results``; reads only q_bins.json files."""
    section, datasets = settings["paper"], settings["datasets"]
    taken = set()
    plans = list(_per_bin_plans(section, datasets, results, taken))
    for i, name in enumerate(section["cross_q"]):
        paths, bins = _all_bins(results, [name], datasets, "cross_q", f"paper.cross_q[{i}]")
        plans.append(
            FigurePlan(
                stem=_unique(f"cross_q_{name}", taken),
                kind="cross_q",
                entry=f"paper.cross_q[{i}]",
                width_in=_width("cross_q", None, section),
                bins=bins,
                phi=None,
                inputs=_inputs(paths, bins),
            )
        )
    if section["study"]:
        paths, bins = _all_bins(results, list(datasets), datasets, "study", "paper.study")
        plans.append(
            FigurePlan(
                stem=_unique("study", taken),
                kind="study",
                entry="paper.study",
                width_in=_width("study", None, section),
                bins=bins,
                phi=None,
                inputs=_inputs(paths, bins),
            )
        )
    return plans


def datasets_used(settings):
    """Names of the datasets whose q_bins.json :func:`plan_figures` reads, for validated
    ``settings`` (what a workflow rule must have run the q-bins step for)."""
    section, datasets = settings["paper"], settings["datasets"]
    first = next(iter(datasets))
    names = [item.get("dataset") or first for kind in PER_BIN_KINDS for item in (section[kind] or [{}])]
    names += list(section["cross_q"]) + (list(datasets) if section["study"] else [])
    return list(dict.fromkeys(names))


def check_inputs_exist(plans):
    """InputError naming the first missing input file of ``plans`` (and its figure entry)."""
    for plan in plans:
        missing = [str(p) for p in plan.inputs if not Path(p).is_file()]
        if missing:
            raise InputError(
                f"{plan.entry}: missing result files {', '.join(missing)} (needed for "
                f"{plan.stem}.pdf); run the workflow for these q bins first"
            )


def input_files(plans):
    """Every input file of ``plans``, each once, in first-use order (what a rule lists)."""
    return list(dict.fromkeys(p for plan in plans for p in plan.inputs))
