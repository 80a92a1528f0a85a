"""Exact symmetries of the heterodyne model and the conventions that pick one representative.

Two transformations of the 14 parameters leave c2 unchanged at every (t1, t2, phi), so no data can
tell the two points apart; every fit and sampler reports the representative chosen here.

1. Velocity sign. c2 depends on the velocity only through cos(q cos(phi + phi0) I_v), even in v:
   (v0, v_offset) -> (-v0, -v_offset) changes nothing. Convention: v0 >= 0 (and v_offset >= 0
   when v0 = 0).
2. Component exchange. The bracket is symmetric under exchanging the reference and sample
   transport parameters (D0, alpha, D_offset) together with x_s <-> x_r = 1 - x_s. With
   x_s(t) = f0 exp(f1 (t - f2)) + f3, 1 - x_s has the same form only for a constant fraction
   (f1 = 0), where x_s = f0 + f3 -> 1 - f0 - f3; the free one of f0, f3 absorbs the change
   (f0 -> 1 - f0 - 2 f3, or f3 -> 1 - 2 f0 - f3). The exchange is a symmetry of a fit only when
   the fixed parameters allow it (see :func:`exchange_absorber`). Convention: J_ref(t_m) <=
   J_sample(t_m) at the map's mean time t_m [s], i.e. the reference is the slower component.

All functions take parameter arrays of shape (..., 14) (canonical order) so they act on single
vectors and on stacks of posterior draws alike.
"""

import numpy as np

from heterodyne.core.parameters import INDEX

_REF = [INDEX["D0_ref"], INDEX["alpha_ref"], INDEX["D_offset_ref"]]
_SAMPLE = [INDEX["D0_sample"], INDEX["alpha_sample"], INDEX["D_offset_sample"]]
_V0, _V_OFFSET, _F0, _F1, _F3 = INDEX["v0"], INDEX["v_offset"], INDEX["f0"], INDEX["f1"], INDEX["f3"]


def transport_at(params, t):
    """(J_ref(t), J_sample(t)) [A^2/s] at one time t > 0 [s]: max(D0 t^alpha + D_offset, 0)."""
    p = np.asarray(params, np.float64)
    return tuple(np.maximum(p[..., d0] * t ** p[..., a] + p[..., off], 0.0) for d0, a, off in (_REF, _SAMPLE))


def fold_velocity(params):
    """The equivalent parameters with v0 >= 0 (v_offset >= 0 where v0 = 0)."""
    p = np.array(params, np.float64)
    flip = (p[..., _V0] < 0) | ((p[..., _V0] == 0) & (p[..., _V_OFFSET] < 0))
    p[..., _V0] = np.where(flip, -p[..., _V0], p[..., _V0])
    p[..., _V_OFFSET] = np.where(flip, -p[..., _V_OFFSET], p[..., _V_OFFSET])
    return p


def exchange_absorber(free_names, params):
    """Which fraction parameter absorbs x_s -> 1 - x_s when the components are exchanged: "f0" or
    "f3" (the free one), "" when the exchange keeps the fraction (both fixed, f0 + f3 = 1/2), or
    None when the exchange is not a symmetry of this fit: the fraction varies in time (f1 free or
    fixed != 0), the fixed transport parameters differ between the components, or f0 and f3 are
    both free (then only f0 + f3 is determined, see :mod:`heterodyne.fit.identifiability`)."""
    free = set(free_names)
    p = np.asarray(params, np.float64)
    names = ("D0", "alpha", "D_offset")
    for name, r, s in zip(names, _REF, _SAMPLE, strict=True):
        ref_free, sample_free = f"{name}_ref" in free, f"{name}_sample" in free
        if ref_free != sample_free or (not ref_free and p[r] != p[s]):
            return None
    if "f1" in free or p[_F1] != 0:
        return None
    f0_free, f3_free = "f0" in free, "f3" in free
    if f0_free != f3_free:
        return "f0" if f0_free else "f3"
    if not f0_free and p[_F0] + p[_F3] == 0.5:
        return ""
    return None


def exchange_components(params, absorber):
    """Reference and sample exchanged, x_s -> 1 - x_s absorbed by ``absorber`` (see
    :func:`exchange_absorber`)."""
    p = np.array(params, np.float64)
    p[..., _REF + _SAMPLE] = p[..., _SAMPLE + _REF]
    if absorber == "f0":
        p[..., _F0] = 1.0 - p[..., _F0] - 2.0 * p[..., _F3]
    elif absorber == "f3":
        p[..., _F3] = 1.0 - 2.0 * p[..., _F0] - p[..., _F3]
    return p


def canonical(params, t_mean, absorber, lower=None, upper=None):
    """The representative of ``params`` (..., 14) under both symmetries: v0 >= 0 and, where the
    exchange is a symmetry (``absorber`` not None), J_ref(t_mean) <= J_sample(t_mean). An exchange
    whose result leaves the bounds ``lower``/``upper`` (14,) is not made."""
    p = fold_velocity(params)
    if absorber is None:
        return p
    j_ref, j_sample = transport_at(p, t_mean)
    swapped = exchange_components(p, absorber)
    swap = j_ref > j_sample
    if lower is not None:
        swap &= np.all((swapped >= lower) & (swapped <= upper), axis=-1)
    return np.where(swap[..., None], swapped, p)
