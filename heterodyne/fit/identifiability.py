"""Parameter combinations that no data can determine, refused before any fit.

With some parameters fixed, the model depends on several free parameters only through one
combination of them; a fit then wanders along a flat valley and a sampler along an unbounded
ridge. The rules (J = D0 t^alpha + D_offset, v = v0 t^beta + v_offset,
x_s = f0 exp(f1 (t - f2)) + f3):

* alpha_n fixed at 0: J_n = D0_n + D_offset_n, so D0_n and D_offset_n are not both determined;
  beta fixed at 0: likewise v0 and v_offset.
* D0_n fixed at 0: alpha_n has no effect; v0 fixed at 0: beta has no effect.
* f1 != 0 (free or fixed): x_s depends on f0 and f2 only through f0 exp(-f1 f2).
* f1 fixed at 0: x_s = f0 + f3 (only the sum is determined) and f2 has no effect.
* f0 fixed at 0: f1 and f2 have no effect.
* one angle only: phi0 enters only through q cos(phi + phi0) v, degenerate with v0.
"""

from heterodyne.core.parameters import INDEX


def undetermined_combinations(free_names, values, n_angles=None):
    """Messages naming each undetermined combination among ``free_names`` given the (14,)
    ``values`` (fixed parameters hold their fixed value); [] when there is none."""
    free = set(free_names)

    def fixed_at(name, value):
        return name not in free and values[INDEX[name]] == value

    found = []
    for n in ("ref", "sample"):
        d0, alpha, offset = f"D0_{n}", f"alpha_{n}", f"D_offset_{n}"
        if {d0, offset} <= free and fixed_at(alpha, 0.0):
            found.append(f"{d0} and {offset} ({alpha} fixed at 0: only {d0} + {offset} enters J_{n})")
        if alpha in free and fixed_at(d0, 0.0):
            found.append(f"{alpha} ({d0} fixed at 0: {alpha} has no effect)")
    if {"v0", "v_offset"} <= free and fixed_at("beta", 0.0):
        found.append("v0 and v_offset (beta fixed at 0: only v0 + v_offset enters v)")
    if "beta" in free and fixed_at("v0", 0.0):
        found.append("beta (v0 fixed at 0: beta has no effect)")
    if fixed_at("f0", 0.0):
        found += [f"{name} (f0 fixed at 0: {name} has no effect)" for name in ("f1", "f2") if name in free]
    elif fixed_at("f1", 0.0):
        if {"f0", "f3"} <= free:
            found.append("f0 and f3 (f1 fixed at 0: only f0 + f3 enters the constant fraction)")
        if "f2" in free:
            found.append("f2 (f1 fixed at 0: f2 has no effect)")
    elif {"f0", "f2"} <= free:
        found.append("f0 and f2 (f1 != 0: only f0 exp(-f1 f2) enters x_s)")
    if n_angles == 1 and "phi0" in free and "v0" in free:
        found.append("phi0 and v0 (one angle: only v0 cos(phi + phi0) enters c2)")
    return found
