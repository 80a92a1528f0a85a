"""Parameter values (units as in :mod:`heterodyne.core.parameters`) at which the heterodyne c2 is smooth
in every parameter: f1 != 0 (time-dependent fraction), alpha, beta != 0, both D offsets != 0, phi0 != 0.
Shared by the physics tests and benchmarks/kernel.py."""

SMOOTH = {
    "D0_ref": 600.0,
    "alpha_ref": 0.4,
    "D_offset_ref": 40.0,
    "D0_sample": 2500.0,
    "alpha_sample": -0.3,
    "D_offset_sample": 100.0,
    "v0": 30.0,
    "beta": 0.5,
    "v_offset": 5.0,
    "f0": 0.3,
    "f1": 0.05,
    "f2": 3.0,
    "f3": 0.1,
    "phi0": 12.0,
}
