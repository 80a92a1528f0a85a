"""Small simulated files, datasets and weights with known truth, for any test that needs data.

``write_test_file(path, **overrides)`` writes an APS-U file (N = 48, three angles with known noise,
contrast and offset; correlations that decay within the window) and returns its SimulationSpec;
``make_dataset(directory, **overrides)`` also ingests it (dataset.h5) and
``make_weights(directory, **overrides)`` also weights it (weights.json). All return paths plus
the spec, whose fields are the truth. ``numpy_c2(spec, q, phi)`` is an independent NumPy model of
the stationary truth (alpha = beta = f1 = 0, t[0] > 0) for checks.
"""

from pathlib import Path

import numpy as np

from heterodyne.core.parameters import PARAMETER_NAMES
from heterodyne.data.aps import open_correlation_file
from heterodyne.data.dataset import load_dataset, save_dataset
from heterodyne.data.selection import select_dataset
from heterodyne.provenance import provenance_record, sha256_file
from heterodyne.simulate.aps_file import simulate_file
from heterodyne.weighting.estimate import angle_weights
from heterodyne.weighting.weights_file import save_weights

#: nlsq.fixed of the workflow tests' configs: every parameter but D0_sample, v0 and f0
WORKFLOW_FIXED = [name for name in PARAMETER_NAMES if name not in ("D0_sample", "v0", "f0")]

#: stationary truth: per-row decay q^2 J dt ~ 0.08-0.12, phase q v dt = 0.015 rad at phi = 0
TEST_TRUTH = dict(
    parameters=dict(
        D0_ref=8000.0,
        alpha_ref=0.0,
        D_offset_ref=0.0,
        D0_sample=12000.0,
        alpha_sample=0.0,
        D_offset_sample=0.0,
        v0=150.0,
        beta=0.0,
        v_offset=0.0,
        f0=0.5,
        f1=0.0,
        f2=0.0,
        f3=0.0,
        phi0=0.0,
    ),
    phi=[-20.0, 25.0, 70.0],
    q=0.01,
    n_frames=48,
    frame_time=0.01,
    stride_frame=1,
    avg_frame=10,
    begin_frame=100,
    contrast=[0.15, 0.20, 0.25],
    offset=[1.0, 1.02, 0.97],
    noise=[0.005, 0.01, 0.02],
    diagonal_excess=0.05,
    seed=7,
    layout="aps_u",
)


def write_test_file(path, **overrides):
    """Simulated result file at ``path`` from TEST_TRUTH updated by ``overrides``; returns the spec."""
    return simulate_file(path, **{**TEST_TRUTH, **overrides})


def make_dataset(directory, q=None, phi=None, frames=None, time_origin=0.0, **overrides):
    """(dataset_path, spec): a simulated file in ``directory`` ingested to dataset.h5."""
    directory = Path(directory)
    raw = directory / "raw_results.hdf"
    spec = write_test_file(raw, **overrides)
    dataset = select_dataset(
        open_correlation_file(raw),
        sha256_file(raw),
        q=spec.q if q is None else q,
        phi=phi,
        frames=frames,
        time_origin=time_origin,
    )
    path = directory / "dataset.h5"
    save_dataset(path, dataset, provenance_record({"test": "make_dataset"}, [raw]))
    return path, spec


def make_weights(directory, method="robust", **overrides):
    """(dataset_path, weights_path, spec): ``make_dataset`` plus its weights.json."""
    data_path, spec = make_dataset(directory, **overrides)
    path = Path(directory) / "weights.json"
    save_weights(
        path, angle_weights(load_dataset(data_path), method), provenance_record({"test": "make_weights"}, [data_path])
    )
    return data_path, path, spec


def numpy_c2(spec, q, phi):
    """Noise-free c2 (N, N) of a stationary truth (alpha = beta = f1 = D_offset = v_offset = 0) at
    ``q`` [1/A] and angle ``phi`` [deg] of ``spec.phi``, written directly from the model:
    c2 = offset + contrast [x_r^4 e^{-q^2 J_r tau} + x_s^4 e^{-q^2 J_s tau}
    + 2 x_r^2 x_s^2 e^{-q^2 (J_r + J_s) tau / 2} cos(q cos(phi + phi0) v tau)] / (x_r^2 + x_s^2)^2."""
    p = spec.parameters
    a = spec.phi.index(phi)
    tau = np.abs(spec.t[None, :] - spec.t[:, None])
    xs = np.clip(p["f0"] + p["f3"], 0.0, 1.0)
    xr = 1.0 - xs
    phase = q * np.cos(np.deg2rad(phi + p["phi0"])) * p["v0"] * tau
    bracket = (
        xr**4 * np.exp(-q * q * p["D0_ref"] * tau)
        + xs**4 * np.exp(-q * q * p["D0_sample"] * tau)
        + 2 * xr**2 * xs**2 * np.exp(-q * q * (p["D0_ref"] + p["D0_sample"]) * tau / 2) * np.cos(phase)
    ) / (xr**2 + xs**2) ** 2
    return spec.offset[a] + spec.contrast[a] * bracket
