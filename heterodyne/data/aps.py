"""Reading APS 8-ID-I two-time result files (APS-U/NeXus and legacy layouts).

:func:`open_correlation_file` detects the layout and returns a :class:`CorrelationFile`: the
(q, phi) of every stored map, the frame timing and the map keys, read without loading any map.
:func:`read_maps` then loads selected maps (optionally a row window) as symmetric float64 arrays.

APS-U (since 2025)
    maps ``/xpcs/twotime/correlation_map/c2_00001, ...``; the number is a 1-based counter in the
    order of ``/xpcs/twotime/processed_bins`` (the 1-based dynamic-ROI labels). A label maps to its
    grid cell by ``abs = dynamic_index_mapping[label - 1]``, ``q = dynamic_v_list_dim0[abs // n_phi]``,
    ``phi = dynamic_v_list_dim1[abs % n_phi]`` with ``n_phi = dynamic_num_pts[1]`` (empty cells
    have no label, so ``(label - 1) // n_phi`` would be wrong). Timing:
    ``dt = frame_time * stride_frame * avg_frame`` [s], first row at ``begin_frame * frame_time`` [s].
Legacy (before 2025)
    maps ``/exchange/C2T_all/<name>``; q [1/A] and phi [deg] of label b are ``dqlist[b - 1]``,
    ``dphilist[b - 1]``. Maps pair with labels through ``/xpcs/qphi_bin_to_process`` (1-based
    labels, in map-name order) when present; without it only ``C2T_<label>`` names carry the
    label (``g2_<n>`` names are counters, so such a file is refused).
    ``dt = exposure_period * avg_frames * stride_frames`` [s]; no begin frame is stored, so the
    first row is at t = 0.

Maps are stored with one triangle (incl. the diagonal) filled; the symmetric map is
``U + U^T - diag(U)`` with U the filled triangle.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from heterodyne.errors import InputError

APS_U_MAPS = "/xpcs/twotime/correlation_map"
LEGACY_MAPS = "/exchange/C2T_all"


@dataclass(frozen=True)
class CorrelationFile:
    """Index of the two-time maps of one result file (no map data loaded).

    ``q_bins`` (n_q,) [1/A] are the file's q bin centres; map k has HDF5 key ``map_keys[k]``,
    dynamic-ROI label ``map_labels[k]``, q bin ``map_q_index[k]`` and angle ``map_phi[k]`` [deg].
    Row i of every map starts at ``first_time + i * dt`` [s] since the start of acquisition.
    """

    path: str
    layout: str
    q_bins: np.ndarray
    map_keys: tuple
    map_labels: np.ndarray
    map_q_index: np.ndarray
    map_phi: np.ndarray
    n_rows: int
    dt: float
    first_time: float
    timing: dict


def _fail(path, what):
    raise InputError(f"{path}: {what}")


def _scalar(f, path, key, what_to_do):
    """A stored scalar (shape (), (1,) or (1, 1)) as float; InputError if missing or not scalar."""
    if key not in f:
        _fail(path, f"missing '{key}' (expected a scalar); {what_to_do}")
    value = np.asarray(f[key][()])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        _fail(path, f"'{key}' should be one number, found shape {value.shape} dtype {value.dtype}; {what_to_do}")
    return float(value.reshape(-1)[0])


def _array(f, path, key, what_to_do):
    if key not in f or not isinstance(f[key], h5py.Dataset):
        _fail(path, f"missing dataset '{key}'; {what_to_do}")
    return np.asarray(f[key][()]).reshape(-1)


def _finite_centres(f, path, key, what_to_do):
    """Bin centres stored at ``key`` as float64; InputError naming the key if any is NaN/inf."""
    values = _array(f, path, key, what_to_do).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        _fail(
            path,
            f"'{key}' holds values that are not finite ({values[bad].tolist()} at index "
            f"{bad.tolist()}); the q/phi map of the file is damaged, re-export it",
        )
    return values


def _first_repeat(values):
    """The smallest value occurring more than once in ``values``, or None."""
    unique, counts = np.unique(values, return_counts=True)
    return int(unique[counts > 1][0]) if np.any(counts > 1) else None


def _unique_labels(path, key, labels):
    """InputError naming ``key`` if a label occurs twice (two maps would share one (q, phi))."""
    repeated = _first_repeat(labels)
    if repeated is not None:
        _fail(
            path,
            f"'{key}' lists label {repeated} more than once ({labels.tolist()}); each "
            "processed bin has one map, re-export the file",
        )


def _whole_numbers(path, keys, values):
    """Frame counts as ints; InputError naming the first key whose value is not a whole number."""
    for key, value in zip(keys, values, strict=True):
        if value != round(value):
            _fail(path, f"'{key}' = {value} is not a whole number of frames; fix the file's correlator settings")
    return [int(round(v)) for v in values]


def _map_names(f, path, group_key, pattern, example):
    """Names of the maps in ``group_key`` matching ``pattern`` (one int group), sorted by number."""
    if group_key not in f or not isinstance(f[group_key], h5py.Group):
        _fail(
            path,
            f"no correlation maps: group '{group_key}' is missing; the file was not "
            "processed with two-time correlation (re-run the correlator with two-time on)",
        )
    named = []
    for name in f[group_key]:
        match = re.fullmatch(pattern, name)
        if match and isinstance(f[group_key][name], h5py.Dataset):
            named.append((int(match.group(1)), name))
    if not named:
        _fail(
            path,
            f"no correlation maps in '{group_key}' (expected datasets named like "
            f"'{example}'); re-run the correlator with two-time on",
        )
    return [name for _, name in sorted(named)]


def _map_rows(f, path, keys):
    """Common size N of the square maps at ``keys``; InputError if any differs or is not square."""
    shapes = {key: f[key].shape for key in keys}
    for key, shape in shapes.items():
        if len(shape) != 2 or shape[0] != shape[1]:
            _fail(
                path,
                f"map '{key}' has shape {shape}, expected a square (N, N) two-time map; "
                "the file is damaged or not a two-time result",
            )
    distinct = sorted(set(shapes.values()))
    if len(distinct) > 1:
        _fail(
            path,
            f"correlation maps have unequal shapes {distinct} (e.g. '{keys[0]}' is "
            f"{shapes[keys[0]]}); all maps of one file must be (N, N) with the same N",
        )
    if distinct[0][0] < 3:
        _fail(path, f"maps are {distinct[0]}; at least 3 x 3 is needed")
    return distinct[0][0]


def _timing(f, path, keys, fix):
    """The :class:`CorrelationFile` timing fields of the frame period [s] at ``keys[0]`` and the
    frame counts at ``keys[1:]``: dt = frame period * stride * avg (the first two counts);
    first_time = begin_frame * frame period where a key ends in begin_frame, else 0; timing = each
    value under the last part of its key. InputError naming the key when a value is missing, not
    whole, dt <= 0 or begin_frame < 0."""
    frame_period = _scalar(f, path, keys[0], f"dt cannot be computed; {fix}")
    counts = _whole_numbers(path, keys[1:], [_scalar(f, path, k, f"dt cannot be computed; {fix}") for k in keys[1:]])
    stride, avg = counts[:2]
    dt = frame_period * stride * avg
    if not (np.isfinite(dt) and dt > 0):
        _fail(
            path,
            f"time step dt = {keys[0]} * {keys[1]} * {keys[2]} = {frame_period} * {stride} * "
            f"{avg} = {dt} s; it must be > 0 (fix the file's timing metadata)",
        )
    timing = {key.rsplit("/", 1)[1]: value for key, value in zip(keys, [frame_period, *counts], strict=True)}
    begin_key = next((key for key in keys if key.endswith("/begin_frame")), None)
    begin = 0 if begin_key is None else timing["begin_frame"]
    if begin < 0:
        _fail(path, f"'{begin_key}' = {begin}; the first frame must be >= 0")
    return {"dt": dt, "first_time": begin * frame_period, "timing": timing}


def _map_labels(f, path, key, maps, n_maps, fix):
    """Integer bin labels at ``key``, one per map of the group ``maps`` (``n_maps``), all distinct."""
    labels = _array(f, path, key, fix).astype(np.int64)
    if len(labels) != n_maps:
        _fail(
            path,
            f"'{key}' lists {len(labels)} bins but '{maps}' holds {n_maps} maps; "
            "they must agree one to one (re-export the file)",
        )
    _unique_labels(path, key, labels)
    return labels


def _aps_u_maps(f, path, fix):
    """The :class:`CorrelationFile` map fields (keys, q bins, labels, q index, angle) of an APS-U file."""
    keys = [f"{APS_U_MAPS}/{name}" for name in _map_names(f, path, APS_U_MAPS, r"c2_(\d+)", "c2_00001")]
    bins = _map_labels(f, path, "/xpcs/twotime/processed_bins", APS_U_MAPS, len(keys), fix)
    mapping = _array(f, path, "/xpcs/qmap/dynamic_index_mapping", fix).astype(np.int64)
    q_list = _finite_centres(f, path, "/xpcs/qmap/dynamic_v_list_dim0", fix)
    phi_list = _finite_centres(f, path, "/xpcs/qmap/dynamic_v_list_dim1", fix)
    num_pts = _array(f, path, "/xpcs/qmap/dynamic_num_pts", fix).astype(np.int64)
    n_phi = int(num_pts[1]) if len(num_pts) == 2 else 0
    if n_phi != len(phi_list) or len(num_pts) != 2 or num_pts[0] != len(q_list):
        _fail(
            path,
            f"'/xpcs/qmap/dynamic_num_pts' = {num_pts.tolist()} does not match "
            f"dim0 ({len(q_list)}) and dim1 ({len(phi_list)}) lengths; {fix}",
        )
    if np.any(bins < 1) or np.any(bins > len(mapping)):
        _fail(
            path,
            f"'/xpcs/twotime/processed_bins' holds labels outside 1..{len(mapping)} "
            f"(the length of dynamic_index_mapping); {fix}",
        )
    cell = mapping[bins - 1]
    if np.any(cell < 0) or np.any(cell >= len(q_list) * n_phi):
        _fail(path, f"'/xpcs/qmap/dynamic_index_mapping' points outside the {len(q_list)} x {n_phi} grid; {fix}")
    if _first_repeat(cell) is not None:
        _fail(
            path,
            f"'/xpcs/qmap/dynamic_index_mapping' gives two processed bins the same grid cell "
            f"{_first_repeat(cell)} (one (q, phi)); {fix}",
        )
    return {
        "map_keys": tuple(keys),
        "q_bins": q_list,
        "map_labels": bins,
        "map_q_index": cell // n_phi,
        "map_phi": phi_list[cell % n_phi],
    }


def _legacy_maps(f, path, fix):
    """The :class:`CorrelationFile` map fields (keys, q bins, labels, q index, angle) of a legacy file."""
    names = _map_names(f, path, LEGACY_MAPS, r"[A-Za-z0-9]+_(\d+)", "g2_00001")
    keys = [f"{LEGACY_MAPS}/{name}" for name in names]
    q_per_label = _finite_centres(f, path, "/xpcs/dqlist", fix)
    phi_per_label = _finite_centres(f, path, "/xpcs/dphilist", fix)
    if len(q_per_label) != len(phi_per_label):
        _fail(
            path,
            f"'/xpcs/dqlist' ({len(q_per_label)}) and '/xpcs/dphilist' ({len(phi_per_label)}) differ in length; {fix}",
        )
    if "/xpcs/qphi_bin_to_process" in f:
        labels = _map_labels(f, path, "/xpcs/qphi_bin_to_process", LEGACY_MAPS, len(keys), fix)
    elif all(n.startswith("C2T_") for n in names):
        labels = np.array([int(re.fullmatch(r"C2T_(\d+)", n).group(1)) for n in names])
    else:
        _fail(
            path,
            f"'/xpcs/qphi_bin_to_process' is missing, so the maps ('{names[0]}', ...) cannot "
            "be paired with their q/phi bins: only 'C2T_<label>' names carry the bin label, "
            "other names are counters. Re-export the file with its processed-bin list",
        )
    if np.any(labels < 1) or np.any(labels > len(q_per_label)):
        _fail(
            path,
            f"map labels {labels.tolist()} fall outside 1..{len(q_per_label)} (the length of '/xpcs/dqlist'); {fix}",
        )
    q_bins = np.unique(q_per_label)
    return {
        "map_keys": tuple(keys),
        "q_bins": q_bins,
        "map_labels": labels,
        "map_q_index": np.searchsorted(q_bins, q_per_label[labels - 1]),
        "map_phi": phi_per_label[labels - 1],
    }


#: layout -> (reader of its maps, its timing keys (frame period first), what is wrong with a file that fails)
LAYOUTS = {
    "aps_u": (
        _aps_u_maps,
        (
            "/entry/instrument/detector_1/frame_time",
            "/xpcs/twotime/config/stride_frame",
            "/xpcs/twotime/config/avg_frame",
            "/xpcs/twotime/config/begin_frame",
            "/xpcs/twotime/config/end_frame",
        ),
        "the file is not a complete APS-U two-time result",
    ),
    "legacy": (
        _legacy_maps,
        ("/measurement/instrument/detector/exposure_period", "/xpcs/stride_frames", "/xpcs/avg_frames"),
        "the file is not a complete legacy two-time result",
    ),
}


def _index(f, path, layout):
    """:class:`CorrelationFile` of the open file ``f`` of ``layout``: its maps, their rows and its
    timing (:func:`_timing`)."""
    read_maps, timing_keys, fix = LAYOUTS[layout]
    maps = read_maps(f, path, fix)
    n_rows = _map_rows(f, path, maps["map_keys"])
    return CorrelationFile(path=str(path), layout=layout, n_rows=n_rows, **maps, **_timing(f, path, timing_keys, fix))


def detect_layout(f):
    """ "aps_u" if ``/xpcs/twotime`` exists, "legacy" if ``/exchange`` or ``/xpcs/dqlist`` does, else None."""
    if "/xpcs/twotime" in f:
        return "aps_u"
    if "/exchange" in f or "/xpcs/dqlist" in f:
        return "legacy"
    return None


def _open(path):
    path = Path(path)
    if path.is_dir():
        _fail(path, "is a directory, not a file; set `datasets.<name>.file` in the config to the result file inside it")
    if not path.is_file():
        _fail(
            path,
            "file not found; check `datasets.<name>.file` in the config (paths are relative "
            "to the directory the workflow runs in)",
        )
    try:
        open(path, "rb").close()
    except PermissionError:
        _fail(
            path,
            "permission denied: this account may not read the file; ask its owner for read "
            "access or copy it to a folder of yours",
        )
    if not h5py.is_hdf5(path):
        _fail(path, "not an HDF5 file; give the APS 8-ID-I result file (*_results.hdf or legacy .hdf)")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        _fail(path, f"cannot be opened as HDF5 ({err}); the file is truncated or damaged, copy it again")


def open_correlation_file(path):
    """Detect the layout of ``path`` and index its maps; InputError on anything unexpected."""
    try:
        with _open(path) as f:
            layout = detect_layout(f)
            if layout is not None:
                return _index(f, path, layout)
            _fail(
                path,
                f"neither APS-U ('{APS_U_MAPS}') nor legacy ('{LEGACY_MAPS}') layout found; "
                "give an APS 8-ID-I two-time result file",
            )
    except (OSError, KeyError, RuntimeError) as err:
        _fail(path, f"read failed ({err}); the file is truncated or damaged, copy it again")


def symmetrise(m):
    """Symmetric map from one filled triangle (incl. diagonal): U + U^T - diag(U).

    The filled triangle is the upper one unless the strict upper triangle is all zero.
    """
    upper = np.triu(m)
    if not np.any(np.triu(m, 1)):
        upper = np.triu(m.T)
    return upper + np.triu(upper, 1).T


def read_maps(cfile, indices, start, stop):
    """Maps ``indices`` of ``cfile``, rows/columns [start, stop), symmetrised: (n, stop - start,
    stop - start) float64. A diagonal block of a triangular map is triangular, so only the
    window is read from disk."""
    out = np.empty((len(indices), stop - start, stop - start), dtype=np.float64)
    try:
        with _open(cfile.path) as f:
            for a, k in enumerate(indices):
                out[a] = symmetrise(np.asarray(f[cfile.map_keys[k]][start:stop, start:stop], np.float64))
    except (OSError, KeyError, RuntimeError) as err:
        _fail(cfile.path, f"reading the maps failed ({err}); the file is truncated or damaged, copy it again")
    return out
