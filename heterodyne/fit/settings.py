"""The ``nlsq`` config section as a checked :class:`FitSettings`."""

from typing import NamedTuple

import numpy as np

from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, as_vector, default_bounds
from heterodyne.errors import InputError


class FitSettings(NamedTuple):
    """initial (14,) start; lower, upper (14,) bounds; free (tuple of free parameter indices in
    canonical order); shared_scaling; n_starts, seed (multi-start); max_nfev, ftol, xtol, gtol;
    jacobian_budget_bytes."""

    initial: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    free: tuple
    shared_scaling: bool
    n_starts: int
    seed: int
    max_nfev: int
    ftol: float
    xtol: float
    gtol: float
    jacobian_budget_bytes: int

    @property
    def free_names(self):
        return [PARAMETER_NAMES[k] for k in self.free]


def settings_from_config(section, source="config"):
    """FitSettings from a validated ``nlsq`` section (schema defaults filled in).

    Bounds: the registry's unless ``bounds`` overrides them. Initial values: ``initial`` by name,
    registry defaults otherwise; a fixed parameter stays at its initial value. Every initial
    value must lie within its bounds.
    """
    initial = as_vector(section["initial"])
    lower, upper = default_bounds()
    for name, (lo, hi) in section["bounds"].items():
        if not lo < hi:
            raise InputError(
                f"{source}: nlsq.bounds.{name} = [{lo}, {hi}] must have lower < upper; fix the bound override"
            )
        lower[INDEX[name]], upper[INDEX[name]] = lo, hi
    outside = [
        f"{name} = {initial[k]} not in [{lower[k]}, {upper[k]}]"
        for k, name in enumerate(PARAMETER_NAMES)
        if not lower[k] <= initial[k] <= upper[k]
    ]
    if outside:
        raise InputError(
            f"{source}: initial value outside its bounds: {'; '.join(outside)}; change "
            f"nlsq.initial or widen nlsq.bounds"
        )
    fixed = set(section["fixed"])
    free = tuple(k for k, name in enumerate(PARAMETER_NAMES) if name not in fixed)
    if not free:
        raise InputError(f"{source}: nlsq.fixed lists all 14 parameters; leave at least one free")
    multistart = section["multistart"]
    if multistart["n_starts"] > 0:
        infinite = [PARAMETER_NAMES[k] for k in free if not np.isfinite(upper[k] - lower[k])]
        if infinite:
            raise InputError(
                f"{source}: nlsq.multistart needs finite bounds, not for {infinite}; set them in nlsq.bounds"
            )
    return FitSettings(
        initial=initial,
        lower=lower,
        upper=upper,
        free=free,
        shared_scaling=section["scaling"] == "shared",
        n_starts=int(multistart["n_starts"]),
        seed=int(multistart["seed"]),
        max_nfev=int(section["max_nfev"]),
        ftol=float(section["ftol"]),
        xtol=float(section["xtol"]),
        gtol=float(section["gtol"]),
        jacobian_budget_bytes=int(section["jacobian_memory_mb"] * 2**20),
    )


def hold_for_angle_count(settings, n_angles):
    """(settings, held): with a single angle, c2 depends on v0 and phi0 only through
    v0 cos(phi + phi0), so a free phi0 (with v0 free) is held at its initial value [deg] and v0
    becomes the velocity component along that direction [A/s]. ``held`` maps each parameter held
    this way to the reason (empty when nothing changes)."""
    k = INDEX["phi0"]
    if n_angles != 1 or k not in settings.free or INDEX["v0"] not in settings.free:
        return settings, {}
    reason = (
        f"one angle: only v0 cos(phi + phi0) enters c2, so phi0 is held at its initial value "
        f"{settings.initial[k]:g} deg and v0 is the velocity along that direction"
    )
    return settings._replace(free=tuple(i for i in settings.free if i != k)), {"phi0": reason}
