"""Simulated APS 8-ID-I result files with known truth (the demo data and the tests' source files):
the maps of :mod:`heterodyne.simulate.maps` written in the beamline's layouts.

Maps are stored float32, upper triangle incl. the diagonal only (lower triangle 0), as the
beamline does. At level ``frames`` the ensemble contrast is 1/modes, the offset 1 and the
diagonal excess 1/photons_per_pixel, which the spec (and the truth attribute) then records, with
noise null.

Grid (APS-U layout): q bins [q/2, q] [1/A]; phi bins = the requested angles plus one extra angle
that is empty at every q; the cell (q/2, first angle) is empty too, so ``dynamic_index_mapping`` is
not the identity. Every non-empty cell gets a label; all labels but the first are processed, so map
counters differ from labels. Maps at q/2 use the same truth. The truth is stored as the JSON root
attribute ``simulation_truth`` (ingest never reads it).
"""

import json
from dataclasses import asdict

import numpy as np

from heterodyne.atomic import atomic_hdf5
from heterodyne.errors import InputError
from heterodyne.provenance import write_provenance_attrs
from heterodyne.simulate.maps import simulate_maps
from heterodyne.simulate.spec import spec_from_section


def _extra_angle(phi):
    """An angle in (-180, 180] at least 10 deg from every requested angle (the empty phi bin)."""
    for candidate in np.arange(-175.0, 181.0, 5.0):
        gap = np.abs((np.asarray(phi) - candidate + 180.0) % 360.0 - 180.0)
        if gap.min() >= 10.0:
            return float(candidate)
    raise InputError("config: 'simulate.phi' leaves no free angle for the empty phi bin; use fewer angles")


def _stored(m):
    """Upper triangle incl. diagonal as float32, lower triangle 0 (beamline storage)."""
    return np.triu(m).astype(np.float32)


def _grid(spec):
    """(q_list, phi_list, cells): cells = sorted grid indices abs = iq * n_phi + iphi that hold maps,
    with (iq, iphi) -> map (q index, position of the angle in spec.phi)."""
    phi_list = np.sort(np.append(np.asarray(spec.phi, float), _extra_angle(spec.phi)))
    q_list = np.array([0.5 * spec.q, spec.q])
    n_phi = len(phi_list)
    first = int(np.argmin(np.abs(phi_list - spec.phi[0])))
    cells = {}
    for iq in range(2):
        for a, angle in enumerate(spec.phi):
            iphi = int(np.argmin(np.abs(phi_list - angle)))
            if (iq, iphi) != (0, first):
                cells[iq * n_phi + iphi] = (iq, a)
    return q_list, phi_list, dict(sorted(cells.items()))


def _truth_attrs(spec):
    return json.dumps({**asdict(spec), "level": spec.level, "dt": spec.dt, "t0": float(spec.t[0])}, sort_keys=True)


def write_aps_u_file(path, spec, provenance):
    """Write ``spec`` as an APS-U/NeXus two-time result file at ``path`` (atomically)."""
    q_list, phi_list, cells = _grid(spec)
    maps = {iq: simulate_maps(spec, q_list[iq]) for iq in range(2)}
    mapping = np.array(list(cells), dtype=np.int64)  # label - 1 -> grid index
    processed = np.arange(2, len(mapping) + 1, dtype=np.int64)  # every label but the first
    with atomic_hdf5(path) as f:
        qmap = f.create_group("xpcs/qmap")
        qmap["dynamic_num_pts"] = np.array([len(q_list), len(phi_list)], dtype=np.int64)
        qmap["dynamic_v_list_dim0"] = q_list
        qmap["dynamic_v_list_dim1"] = phi_list
        qmap["dynamic_index_mapping"] = mapping
        qmap["dynamic_v_list_dim0"].attrs.update(unit="1/A", name="q")
        qmap["dynamic_v_list_dim1"].attrs.update(unit="deg", name="phi")
        twotime = f.create_group("xpcs/twotime")
        twotime["processed_bins"] = processed
        config = twotime.create_group("config")
        config["begin_frame"] = spec.begin_frame
        config["end_frame"] = spec.begin_frame + spec.n_frames * spec.stride_frame * spec.avg_frame
        config["stride_frame"] = spec.stride_frame
        config["avg_frame"] = spec.avg_frame
        f["entry/instrument/detector_1/frame_time"] = spec.frame_time
        group = twotime.create_group("correlation_map")
        for counter, label in enumerate(processed, start=1):
            iq, a = cells[int(mapping[label - 1])]
            group.create_dataset(f"c2_{counter:05d}", data=_stored(maps[iq][a]), compression="lzf")
        f.attrs["simulation_truth"] = _truth_attrs(spec)
        write_provenance_attrs(f, provenance)


def write_legacy_file(path, spec, provenance):
    """Write ``spec`` in the legacy layout at ``path`` (atomically): one q bin, maps
    ``/exchange/C2T_all/g2_00001, ...`` paired with labels by ``/xpcs/qphi_bin_to_process``.

    Bins: label b <-> (q, sorted angle b - 1) plus a last label at the empty extra angle; the
    processed bins are listed in reverse label order so sorted map names differ from labels.
    """
    if spec.begin_frame != 0:
        raise InputError("config: 'simulate.begin_frame' must be 0 with layout 'legacy'")
    order = np.argsort(spec.phi, kind="stable")
    phi_sorted = np.asarray(spec.phi, float)[order]
    maps = simulate_maps(spec, spec.q)[order]
    n_bins = len(phi_sorted) + 1
    processed = np.arange(len(phi_sorted), 0, -1, dtype=np.int64)
    with atomic_hdf5(path) as f:
        f["xpcs/Version"] = "legacy (simulated)"
        f["xpcs/dqlist"] = np.full((1, n_bins), spec.q)
        f["xpcs/dphilist"] = np.append(phi_sorted, _extra_angle(spec.phi))[None, :]
        f["xpcs/qphi_bin_to_process"] = processed[None, :]
        f["xpcs/avg_frames"] = np.array([[spec.avg_frame]])
        f["xpcs/stride_frames"] = np.array([[spec.stride_frame]])
        f["measurement/instrument/detector/exposure_period"] = np.array([[spec.frame_time]])
        group = f.create_group("exchange/C2T_all")
        for counter, label in enumerate(processed, start=1):
            group.create_dataset(f"g2_{counter:05d}", data=_stored(maps[label - 1]), compression="lzf")
        f.attrs["simulation_truth"] = _truth_attrs(spec)
        write_provenance_attrs(f, provenance)


def write_simulated_file(path, spec, provenance):
    """Write ``spec`` in the layout it names ("aps_u" or "legacy")."""
    writer = write_aps_u_file if spec.layout == "aps_u" else write_legacy_file
    writer(path, spec, provenance)


def simulate_file(path, provenance=None, **overrides):
    """Write a simulated file from the schema's `simulate` defaults updated by ``overrides``
    (keys of the `simulate` section, e.g. ``n_frames=40, noise=[0.01, 0.02]``); returns the spec.

    The quick way for tests and notebooks to get a realistic file with known truth.
    """
    from heterodyne.config import validate_config
    from heterodyne.provenance import provenance_record

    config = validate_config({"datasets": {"simulated": {"file": str(path)}}, "simulate": dict(overrides)})
    spec = spec_from_section(config["simulate"])
    write_simulated_file(path, spec, provenance or provenance_record(config["simulate"], []))
    return spec
