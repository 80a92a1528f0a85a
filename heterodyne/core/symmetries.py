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

3. An approximate exchange. With a fraction that changes in time, 1 - x_s is not of the form
   f0 exp(f1 (t - f2)) + f3, but close to it over a map, so a fit can settle in the basin of the
   exchanged components. :func:`exchanged_start` gives the start of that other basin: the
   components exchanged and f0, f1 chosen so that x_s equals 1 - x_s of ``params`` at two times.

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


def sign_carrier(free_names, params):
    """The free velocity parameter whose sign the convention of :func:`fold_velocity` fixes: "v0"
    when v0 is free, "v_offset" when only v_offset is free and the fixed v0 is 0, else None (the
    sign is then fixed by a fixed parameter). Sampling it on [0, upper] samples the folded
    posterior, which is unimodal where the unfolded one has mirror modes at +-v."""
    free = set(free_names)
    if "v0" in free:
        return "v0"
    if "v_offset" in free and np.asarray(params, np.float64)[_V0] == 0:
        return "v_offset"
    return None


def components_mirror(free_names, params):
    """True when the reference and sample transport parameters (D0, alpha, D_offset) are free
    alike and the fixed ones have equal values, so exchanging them is a move within the fit."""
    free = set(free_names)
    p = np.asarray(params, np.float64)
    for name, r, s in zip(("D0", "alpha", "D_offset"), _REF, _SAMPLE, strict=True):
        ref_free, sample_free = f"{name}_ref" in free, f"{name}_sample" in free
        if ref_free != sample_free or (not ref_free and p[r] != p[s]):
            return False
    return True


def exchange_absorber(free_names, params):
    """Which fraction parameter absorbs x_s -> 1 - x_s when the components are exchanged: "f0" or
    "f3" (the free one), "" when the exchange keeps the fraction (both fixed, f0 + f3 = 1/2), or
    None when the exchange is not a symmetry of this fit: the fraction varies in time (f1 free or
    fixed != 0), the fixed transport parameters differ between the components, or f0 and f3 are
    both free (then only f0 + f3 is determined, see :mod:`heterodyne.fit.identifiability`)."""
    free = set(free_names)
    p = np.asarray(params, np.float64)
    if not components_mirror(free_names, p) or "f1" in free or p[_F1] != 0:
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


def exchanged_start(params, t_a, t_b):
    """``params`` (14,) with reference and sample exchanged and f0, f1 matching
    x_s'(t) = 1 - x_s(t) at t = t_a and t_b [s] (f2, f3 kept): with u(t) = 1 - x_s(t) - f3 > 0,
    f1' = ln(u(t_a) / u(t_b)) / (t_a - t_b) [1/s] and f0' = u(t_a) exp(-f1' (t_a - f2)).
    For a constant fraction this is the exact exchange with f0 absorbing. None when u <= 0 at
    either time (no such representation)."""
    p = np.array(params, np.float64)
    f0, f1, f2, f3 = p[_F0], p[_F1], p[INDEX["f2"]], p[_F3]
    u_a, u_b = (1.0 - np.clip(f0 * np.exp(f1 * (t - f2)) + f3, 0.0, 1.0) - f3 for t in (t_a, t_b))
    if not (u_a > 0 and u_b > 0):
        return None
    swapped = exchange_components(p, None)
    swapped[_F1] = np.log(u_a / u_b) / (t_a - t_b)
    swapped[_F0] = u_a * np.exp(-swapped[_F1] * (t_a - f2))
    return swapped
