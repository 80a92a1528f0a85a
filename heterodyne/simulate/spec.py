"""The truth and acquisition of a simulation (:class:`SimulationSpec`), from the config's
`simulate` section.

Times: c2 row i is at t_i = begin_frame * frame_time + i * dt [s] with dt = frame_time *
stride_frame * avg_frame [s]; q [1/A]; phi [deg]; contrast, offset, noise (sd) and
diagonal_excess in c2 units; parameters by name (:mod:`heterodyne.core.parameters`).
"""

from dataclasses import dataclass

import numpy as np

from heterodyne.errors import InputError
from heterodyne.simulate.frames import SpeckleSettings


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
        """ "frames" when the maps come from simulated speckle frames, else "maps"."""
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
        fields.update(
            contrast=[speckle.contrast] * n_phi,
            offset=[1.0] * n_phi,
            noise=None,
            diagonal_excess=speckle.diagonal_excess,
        )
    else:
        for key in ("contrast", "offset", "noise"):
            if len(section[key]) != n_phi:
                raise InputError(
                    f"config: 'simulate.{key}' has {len(section[key])} values but "
                    f"'simulate.phi' has {n_phi}; give one value per angle"
                )
    if len(set(section["phi"])) != n_phi:
        raise InputError("config: 'simulate.phi' repeats an angle; give distinct angles")
    if section["layout"] == "legacy" and section["begin_frame"] != 0:
        raise InputError(
            "config: 'simulate.begin_frame' must be 0 with layout 'legacy' (legacy files store no begin frame)"
        )
    return SimulationSpec(**fields, speckle=speckle)
