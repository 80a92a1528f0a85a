"""Registry of the 14 physics parameters: canonical order, units, defaults and bounds.

Units follow from the model: q in 1/Angstrom, t in s, so the transport rate J(t) is in
Angstrom^2/s (q^2 * integral J dt is dimensionless) and the velocity v(t) in Angstrom/s
(q * integral v dt is a phase in rad). Per-angle contrast and offset are not among the 14;
their bounds are ``SCALING_BOUNDS``.

SIGN CONVENTION: c2 depends on the velocity only through cos(q cos(phi + phi0) integral v dt),
which is even in v, so (v0, v_offset) and (-v0, -v_offset) give the same c2 and no data can tell
them apart. The bounds stay symmetric (so the optimiser's path does not depend on the sign) and
the NLSQ fit reports the equivalent solution with v0 >= 0
(:mod:`heterodyne.core.symmetries`).
"""

from typing import NamedTuple

import numpy as np


class Parameter(NamedTuple):
    name: str
    unit: str
    default: float
    lower: float
    upper: float
    description: str


def _transport(component, label):
    """D0, alpha and D_offset of one component's transport rate J(t) = max(D0 t^alpha + D_offset, 0) [A^2/s]."""
    return (
        Parameter(
            f"D0_{component}",
            f"A^2 s^-(1+alpha_{component})",
            1.0e3,
            0.0,
            1.0e7,
            f"{label} transport prefactor: J_{component}(t) = "
            f"max(D0_{component} t^alpha_{component} + D_offset_{component}, 0)",
        ),
        Parameter(f"alpha_{component}", "1", 0.0, -2.0, 2.0, f"{label} transport exponent"),
        Parameter(f"D_offset_{component}", "A^2/s", 0.0, -1.0e5, 1.0e5, f"{label} transport offset"),
    )


PARAMETERS = (
    *_transport("ref", "reference"),
    *_transport("sample", "sample"),
    Parameter(
        "v0",
        "A s^-(1+beta)",
        10.0,
        -1.0e5,
        1.0e5,
        "velocity prefactor: v(t) = v0 t^beta + v_offset (fits report v0 >= 0: see SIGN CONVENTION)",
    ),
    Parameter("beta", "1", 0.0, -2.0, 2.0, "velocity exponent"),
    Parameter("v_offset", "A/s", 0.0, -1.0e5, 1.0e5, "velocity offset"),
    Parameter("f0", "1", 0.5, 0.0, 1.0, "sample fraction amplitude: x_s(t) = clip(f0 exp(f1 (t - f2)) + f3, 0, 1)"),
    Parameter("f1", "1/s", 0.0, -10.0, 10.0, "sample fraction rate"),
    Parameter("f2", "s", 0.0, -1.0e4, 1.0e4, "sample fraction time shift"),
    Parameter("f3", "1", 0.0, 0.0, 1.0, "sample fraction baseline"),
    Parameter("phi0", "deg", 0.0, -180.0, 180.0, "flow direction offset added to the detector angle phi"),
)

PARAMETER_NAMES = tuple(p.name for p in PARAMETERS)
INDEX = {name: k for k, name in enumerate(PARAMETER_NAMES)}
#: the sample-fraction parameters: the model lets them vary with q (fitted per q bin by the joint
#: fit where free, left out of the cross-q test)
FRACTION_NAMES = ("f0", "f1", "f2", "f3")

#: bounds of the per-angle speckle contrast and baseline offset (dimensionless)
SCALING_BOUNDS = {"contrast": (0.0, 1.0), "offset": (0.5, 1.5)}


def default_values():
    """Defaults in canonical order, float64 array of shape (14,)."""
    return np.array([p.default for p in PARAMETERS], dtype=np.float64)


def default_bounds():
    """(lower, upper) float64 arrays of shape (14,)."""
    return (
        np.array([p.lower for p in PARAMETERS], dtype=np.float64),
        np.array([p.upper for p in PARAMETERS], dtype=np.float64),
    )


def as_vector(values):
    """Canonical (14,) array from a {name: value} mapping; missing names take their default."""
    unknown = set(values) - set(PARAMETER_NAMES)
    if unknown:
        raise KeyError(f"unknown parameter(s) {sorted(unknown)}; known: {', '.join(PARAMETER_NAMES)}")
    return np.array([values.get(p.name, p.default) for p in PARAMETERS], dtype=np.float64)


def as_dict(vector):
    """{name: float} from a canonical (14,) array."""
    return {name: float(v) for name, v in zip(PARAMETER_NAMES, np.asarray(vector), strict=True)}
