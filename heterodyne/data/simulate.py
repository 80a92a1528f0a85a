"""Simulated APS 8-ID-I result files with known truth (the demo data and the tests' source files).

At level ``maps`` (default), for each angle phi_a the stored map is

    c2_ij = offset_a + contrast_a * B_ij(params, q, phi_a) + e_ij          (i < j, e ~ N(0, sigma_a^2))
    c2_ii = offset_a + contrast_a * B_ii + diagonal_excess + e_ii          (raw shot-noise bump)

with B the heterodyne bracket of :mod:`heterodyne.core.physics` on the absolute grid
t_i = begin_frame * frame_time + i * dt [s], dt = frame_time * stride_frame * avg_frame [s]. One
noise draw per unordered pair (the map is symmetric). At level ``frames`` each map is the
correlator's product of simulated speckle frames of its own region of pixels
(:mod:`heterodyne.data.simulate_frames`); its ensemble contrast is 1/modes, its offset 1 and its
diagonal excess 1/photons_per_pixel, which the spec (and the truth attribute) then records, with
noise null. Either way maps are stored float32, upper triangle incl. the diagonal only (lower
triangle 0), as the beamline does.

Grid (APS-U layout): q bins [q/2, q] [1/A]; phi bins = the requested angles plus one extra angle
that is empty at every q; the cell (q/2, first angle) is empty too, so ``dynamic_index_mapping`` is
not the identity. Every non-empty cell gets a label; all labels but the first are processed, so map
counters differ from labels. Maps at q/2 use the same truth. The truth is stored as the JSON root
attribute ``simulation_truth`` (ingest never reads it).
"""

import json
from dataclasses import asdict, dataclass

import numpy as np

from heterodyne.atomic import atomic_hdf5
from heterodyne.core.c2 import c2_meshgrid
from heterodyne.core.parameters import as_vector
from heterodyne.data.simulate_frames import SpeckleSettings, speckle_maps
from heterodyne.errors import InputError
from heterodyne.provenance import write_provenance_attrs


@dataclass(frozen=True)
class SimulationSpec:
    """Truth and acquisition of a simulated file (the `simulate` config section, validated)."""

    parameters: dict
    phi: list
    q: float
    n_frames: int
    frame_time: float
    stride_frame: int
    avg_frame: int
    begin_frame: int
    contrast: list
    offset: list
    noise: list | None
    diagonal_excess: float
    seed: int
    layout: str
    speckle: SpeckleSettings | None

    @property
    def level(self):
        """"frames" when the maps come from simulated speckle frames, else "maps"."""
        return "maps" if self.speckle is None else "frames"

    @property
    def dt(self):
        """Time per c2 row [s] = frame_time * stride_frame * avg_frame."""
        return self.frame_time * self.stride_frame * self.avg_frame

    @property
    def t(self):
        """Absolute time of each c2 row [s]: begin_frame * frame_time + i * dt."""
        return self.begin_frame * self.frame_time + np.arange(self.n_frames) * self.dt


def spec_from_section(section):
    """:class:`SimulationSpec` from a validated `simulate` section. Level maps: the per-angle lists
    must match phi. Level frames: contrast, offset, noise and diagonal_excess are the ensemble
    values of the frame-level maps ([1/modes], [1], null, 1/photons_per_pixel)."""
    n_phi = len(section["phi"])
    fields = {k: section[k] for k in SimulationSpec.__dataclass_fields__ if k != "speckle"}
    speckle = None
    if section["level"] == "frames":
        speckle = SpeckleSettings(section["pixels"], section["modes"], float(section["photons_per_pixel"]))
        fields.update(contrast=[speckle.contrast] * n_phi, offset=[1.0] * n_phi, noise=None,
                      diagonal_excess=speckle.diagonal_excess)
    else:
        for key in ("contrast", "offset", "noise"):
            if len(section[key]) != n_phi:
                raise InputError(f"config: 'simulate.{key}' has {len(section[key])} values but "
                                 f"'simulate.phi' has {n_phi}; give one value per angle")
    if len(set(section["phi"])) != n_phi:
        raise InputError("config: 'simulate.phi' repeats an angle; give distinct angles")
    if section["layout"] == "legacy" and section["begin_frame"] != 0:
        raise InputError("config: 'simulate.begin_frame' must be 0 with layout 'legacy' (legacy files "
                         "store no begin frame)")
    return SimulationSpec(**fields, speckle=speckle)


def _extra_angle(phi):
    """An angle in (-180, 180] at least 10 deg from every requested angle (the empty phi bin)."""
    for candidate in np.arange(-175.0, 181.0, 5.0):
        gap = np.abs((np.asarray(phi) - candidate + 180.0) % 360.0 - 180.0)
        if gap.min() >= 10.0:
            return float(candidate)
    raise InputError("config: 'simulate.phi' leaves no free angle for the empty phi bin; use fewer angles")


def simulate_maps(spec, q):
    """Symmetric maps (n_phi, N, N) at ``q`` [1/A] for the angles of ``spec`` (float64), from
    speckle frames at level frames, else model plus Gaussian noise (:func:`noisy_model_maps`)."""
    return noisy_model_maps(spec, q) if spec.speckle is None else speckle_maps(spec, q)


def noisy_model_maps(spec, q):
    """Model plus Gaussian noise, (n_phi, N, N) at ``q`` [1/A] for the angles of ``spec`` (float64).

    The generator is seeded by (seed, round(q * 1e6)) so each q bin gets its own noise.
    """
    model = np.asarray(c2_meshgrid(as_vector(spec.parameters), spec.t, q, spec.dt, np.asarray(spec.phi, float),
                                   np.asarray(spec.contrast, float), np.asarray(spec.offset, float)))
    rng = np.random.default_rng([spec.seed, int(round(q * 1e6))])
    n = spec.n_frames
    upper = np.triu(rng.standard_normal((len(spec.phi), n, n)))
    noise = (upper + np.transpose(np.triu(upper, 1), (0, 2, 1))) * np.asarray(spec.noise)[:, None, None]
    maps = model + noise
    maps[:, np.arange(n), np.arange(n)] += spec.diagonal_excess
    return maps


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
    return json.dumps({**asdict(spec), "level": spec.level, "dt": spec.dt, "t0": float(spec.t[0])},
                      sort_keys=True)


def write_aps_u_file(path, spec, provenance):
    """Write ``spec`` as an APS-U/NeXus two-time result file at ``path`` (atomically)."""
    q_list, phi_list, cells = _grid(spec)
    maps = {iq: simulate_maps(spec, q_list[iq]) for iq in range(2)}
    mapping = np.array(list(cells), dtype=np.int64)           # label - 1 -> grid index
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
