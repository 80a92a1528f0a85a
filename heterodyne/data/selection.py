"""Select one q bin, a set of angles and a frame window of a result file -> :class:`Dataset`.

Time axis [s] (absolute, since the start of acquisition, plus a user offset):
``t_k = first_time + (start + k) * dt + time_origin``, k = 0..n-1, where ``first_time`` is
``begin_frame * frame_time`` (APS-U; 0 for legacy files), ``start`` the first c2 row of the
window and ``dt`` the time per c2 row.

Invalid elements (non-finite in the file) are flagged False in ``valid`` and replaced in ``c2`` by
the median of the map's valid off-diagonal elements, so no NaN/inf travels downstream. The raw
diagonal (shot noise) is replaced by the mean of its valid neighbours c2[i, i-1] and c2[i, i+1]
(display only; fits use pairs i < j).

A map whose median c2 lies far from the normalised baseline ~1 (stored as integers or counts)
is kept but logged and listed under ``selection["warnings"]``, which the dataset report shows.
"""

import logging

import numpy as np

from heterodyne.data.aps import read_maps
from heterodyne.data.dataset import Dataset
from heterodyne.errors import InputError

log = logging.getLogger(__name__)

#: a requested phi [deg] (config `phi`) selects the file's angle within this many degrees
REQUESTED_PHI_TOLERANCE_DEG = 0.5
#: c2 is normalised to a long-lag baseline of ~1, so a map's median lies in this range
MEDIAN_RANGE = (0.5, 2.0)


def choose_q_index(cfile, q=None, q_index=None):
    """Index into ``cfile.q_bins`` of the requested q bin (nearest to ``q`` [1/A], or ``q_index``).

    With neither given the file must hold maps at a single q. ``q`` must lie within the grid
    (at most half the edge bin spacing beyond the first/last centre) and its bin must hold maps.
    """
    where = f"{cfile.path}"
    bins = cfile.q_bins
    present = sorted(set(cfile.map_q_index.tolist()))
    listing = ", ".join(f"{bins[i]:.6g}" for i in present)
    if q is not None and q_index is not None:
        raise InputError(f"{where}: give 'q' or 'q_index' in the dataset config, not both")
    if q is None and q_index is None:
        if len(present) != 1:
            raise InputError(
                f"{where}: maps exist at {len(present)} q bins ({listing} 1/A); set 'q' or "
                "'q_index' in the dataset config to choose one"
            )
        return present[0]
    if q_index is not None:
        if q_index >= len(bins):
            raise InputError(
                f"{where}: q_index {q_index} out of range; the file has {len(bins)} q bins (0..{len(bins) - 1})"
            )
        chosen = q_index
    else:
        chosen = int(np.argmin(np.abs(bins - q)))
        half_edge = 0.5 * (np.diff(bins).min() if len(bins) > 1 else bins[0])
        if q < bins[0] - half_edge or q > bins[-1] + half_edge:
            raise InputError(
                f"{where}: requested q = {q:.6g} 1/A is outside the file's q grid "
                f"[{bins[0]:.6g}, {bins[-1]:.6g}]; maps exist at q = {listing} 1/A"
            )
    if chosen not in present:
        raise InputError(
            f"{where}: q bin {chosen} (q = {bins[chosen]:.6g} 1/A) has no correlation "
            f"map; maps exist at q = {listing} 1/A"
        )
    return chosen


def choose_q_indices(cfile, q=None, q_index=None):
    """Sorted indices into ``cfile.q_bins`` of the requested q bins: ``q`` is ``"all"`` (every bin
    holding maps), a value or a list of values [1/A] (the nearest bin each), ``q_index`` an index
    or a list. Each bin must hold maps and be requested once."""
    if q == "all":
        if q_index is not None:
            raise InputError(f"{cfile.path}: give 'q' or 'q_index' in the dataset config, not both")
        return sorted(set(cfile.map_q_index.tolist()))
    requests = [{"q": value} for value in (q if isinstance(q, list) else [q])] if q is not None else []
    if q_index is not None:
        if q is not None:
            raise InputError(f"{cfile.path}: give 'q' or 'q_index' in the dataset config, not both")
        requests = [{"q_index": i} for i in (q_index if isinstance(q_index, list) else [q_index])]
    chosen = {}
    for request in requests or [{}]:
        index = choose_q_index(cfile, **request)
        if index in chosen:
            raise InputError(
                f"{cfile.path}: {chosen[index]} and {request} select the same q bin "
                f"(q = {cfile.q_bins[index]:.6g} 1/A); list each q bin once"
            )
        chosen[index] = request
    return sorted(chosen)


def choose_maps(cfile, q_bin, phi=None):
    """Indices of the maps at q bin ``q_bin``, sorted by angle; with ``phi`` [deg] given, only
    those within REQUESTED_PHI_TOLERANCE_DEG of a requested angle (each requested angle must match)."""
    at_q = np.flatnonzero(cfile.map_q_index == q_bin)
    at_q = at_q[np.argsort(cfile.map_phi[at_q], kind="stable")]
    if phi is None:
        return at_q
    available = cfile.map_phi[at_q]
    chosen = {}
    for angle in phi:
        gap = np.abs((available - angle + 180.0) % 360.0 - 180.0)
        if gap.min() > REQUESTED_PHI_TOLERANCE_DEG:
            raise InputError(
                f"{cfile.path}: phi = {angle:g} deg not present at q = "
                f"{cfile.q_bins[q_bin]:.6g} 1/A (within {REQUESTED_PHI_TOLERANCE_DEG} deg); "
                f"available phi: {', '.join(f'{a:.4g}' for a in available)} deg"
            )
        k = int(at_q[int(np.argmin(gap))])
        if k in chosen:
            raise InputError(
                f"{cfile.path}: phi = {chosen[k]:g} and {angle:g} deg select the same bin "
                f"(phi = {cfile.map_phi[k]:g} deg); list each angle once in 'phi' of the "
                "dataset config"
            )
        chosen[k] = angle
    return np.array(sorted(chosen, key=lambda k: cfile.map_phi[k]), dtype=np.int64)


def frame_window(cfile, frames=None):
    """[start, stop) c2 rows; the default is every row. Out of range is an error, never clamped."""
    n = cfile.n_rows
    start, stop = (0, n) if frames is None else (int(frames[0]), int(frames[1]))
    if start < 0 or stop > n:
        raise InputError(
            f"{cfile.path}: frame window [{start}, {stop}) is out of range; the maps have "
            f"{n} rows, so 0 <= start < stop <= {n} (fix 'frames' in the dataset config)"
        )
    if stop - start < 3:
        raise InputError(
            f"{cfile.path}: frame window [{start}, {stop}) selects {max(stop - start, 0)} "
            "rows; at least 3 are needed (empty selection: fix 'frames' in the dataset config)"
        )
    return start, stop


def clean_maps(raw, path, names):
    """(c2, valid) from raw symmetric maps (n, N, N): invalid elements replaced by the map's
    median valid off-diagonal value, diagonal by the mean of its valid neighbours."""
    valid = np.isfinite(raw)
    n = raw.shape[-1]
    off = ~np.eye(n, dtype=bool)
    c2 = np.empty_like(raw)
    for a, (m, ok) in enumerate(zip(raw, valid, strict=True)):
        usable = ok & off
        if not usable.any():
            raise InputError(
                f"{path}: the map of {names[a]} has no finite off-diagonal value in the "
                "selected window (all NaN/inf); drop that angle from 'phi' or change 'frames'"
            )
        c2[a] = np.where(ok, m, np.median(m[usable]))
        # neighbours of the diagonal: c2[i, i+1] for i < N-1 and c2[i, i-1] = c2[i-1, i] for i > 0
        first_off, first_ok = np.diagonal(c2[a], 1), np.diagonal(ok, 1)
        total, count = np.zeros(n), np.zeros(n)
        for rows in (slice(None, -1), slice(1, None)):
            total[rows] += np.where(first_ok, first_off, 0.0)
            count[rows] += first_ok
        diag = np.arange(n)
        c2[a][diag, diag] = np.where(count > 0, total / np.maximum(count, 1), c2[a][diag, diag])
    return c2, valid


def scale_warnings(c2, valid, names):
    """One warning per map whose median valid off-diagonal c2 lies outside MEDIAN_RANGE (a map
    stored as integers or counts, not normalised c2)."""
    off = ~np.eye(c2.shape[-1], dtype=bool)
    found = []
    for m, ok, name in zip(c2, valid, names, strict=True):
        median = float(np.median(m[ok & off]))
        if not MEDIAN_RANGE[0] <= median <= MEDIAN_RANGE[1]:
            found.append(
                f"the map of {name} has median c2 = {median:.4g}, outside {list(MEDIAN_RANGE)}: "
                "normalised c2 has a baseline of ~1, so this map may be scaled (integers, "
                "counts); fitted contrast and offset will carry that scale"
            )
    return found


def select_dataset(cfile, source_sha256, q=None, q_index=None, phi=None, frames=None, time_origin=0.0):
    """The :class:`Dataset` of one q bin, the chosen angles and frame window of ``cfile``."""
    q_bin = choose_q_index(cfile, q=q, q_index=q_index)
    maps = choose_maps(cfile, q_bin, phi)
    start, stop = frame_window(cfile, frames)
    labels = cfile.map_labels[maps].tolist()
    names = [f"label {cfile.map_labels[k]} (phi = {cfile.map_phi[k]:g} deg, '{cfile.map_keys[k]}')" for k in maps]
    raw = read_maps(cfile, maps, start, stop)
    raw_diagonal = np.diagonal(raw, axis1=1, axis2=2)
    raw_diagonal = np.where(np.isfinite(raw_diagonal), raw_diagonal, np.nan)
    c2, valid = clean_maps(raw, cfile.path, names)
    warnings = scale_warnings(c2, valid, names)
    for warning in warnings:
        log.warning("%s", warning)
    t = cfile.first_time + (start + np.arange(stop - start)) * cfile.dt + time_origin
    selection = {
        "layout": cfile.layout,
        "q_requested": q,
        "q_index": int(q_bin),
        "phi_requested": phi,
        "frames": [start, stop],
        "labels": labels,
        "map_keys": [cfile.map_keys[k] for k in maps],
        "first_time_s": cfile.first_time,
        "timing": cfile.timing,
        "warnings": warnings,
    }
    return Dataset(
        c2=c2,
        valid=valid,
        t=t,
        phi=cfile.map_phi[maps].astype(np.float64),
        dt=cfile.dt,
        q=float(cfile.q_bins[q_bin]),
        time_origin=float(time_origin),
        source_path=str(cfile.path),
        source_sha256=source_sha256,
        selection=selection,
        raw_diagonal=raw_diagonal,
    )
