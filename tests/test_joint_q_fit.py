"""Joint multi-q NLSQ fit (:mod:`heterodyne.fit.joint_q`, `heterodyne fit-joint-q`).

Data: two q bins simulated from one truth (tests/nlsq_fixtures.py TRUTH, its documented units)
with a sample fraction that differs per q (f0 = 0.35 at q = 0.007 1/A with angles 30, 90 deg;
f0 = 0.45 at q = 0.01 1/A with angles 0, 45, 90 deg), N = 24 frames over 10 s, Gaussian noise
sigma = 0.01 on every pair. Free: D0_sample, v0, phi0 (shared) and f0 (per q); the rest fixed at
the truth.

Why the per-q covariances predict the joint standard errors (test b). Write the Fisher information
of the joint problem in the shared parameters s and the nuisance parameters n_b of every bin b
(its fractions, contrasts and offsets). Bin b's residuals depend on s and n_b only, so the
information is a sum of per-bin terms and has the block-arrow form

    I = [[sum_b A_b, B_1, ..., B_Q], [B_1^T, D_1, 0, ...], ..., [B_Q^T, 0, ..., D_Q]],

with A_b, B_b, D_b the blocks of bin b's own information I_b. The marginal covariance of s is the
inverse of the Schur complement, which splits into per-bin terms,

    Cov_joint(s)^-1 = sum_b A_b - sum_b B_b D_b^-1 B_b^T = sum_b (A_b - B_b D_b^-1 B_b^T)
                    = sum_b [Cov_b(s)]^-1,

where Cov_b(s) is the (s, s) block of the per-q fit's covariance (the per-q fit frees the same
physics parameters, so its nuisance parameters are exactly n_b, marginalised by taking the block
of the full inverse). The per-q fits' fractions therefore need not be fixed. The identity is exact
for the information at one point; the test allows 20 % for the per-q fits' different solutions
and reduced chi2 scalings.
"""

import json

import h5py
import numpy as np
import pytest
from nlsq_fixtures import TRUTH, nlsq_section

from heterodyne.cli import main
from heterodyne.core.jax_backend import compute_c2_heterodyne_multiphi
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, as_vector
from heterodyne.data.aps import open_correlation_file
from heterodyne.data.dataset import Dataset, load_dataset, save_dataset
from heterodyne.data.selection import select_dataset
from heterodyne.fit.joint_fit import fit_joint
from heterodyne.fit.joint_q import QBinProblem, fit_joint_q
from heterodyne.fit.problem import build_problem
from heterodyne.fit.settings import settings_from_config
from heterodyne.noise_model import AngleNoise, independent_noise
from heterodyne.provenance import provenance_record, read_provenance_attrs, sha256_file
from heterodyne.simulate.aps_file import simulate_file
from heterodyne.weighting.estimate import angle_weights
from heterodyne.weighting.weights_file import AngleWeights, save_weights

N = 24
SIGMA = 0.01
CONTRAST, OFFSET = 0.3, 1.0
BINS = (("q0.007", 0.007, (30.0, 90.0), 0.35), ("q0.01", 0.01, (0.0, 45.0, 90.0), 0.45))
SHARED = ["D0_sample", "v0", "phi0"]
FREE = SHARED + ["f0"]
START = dict(TRUTH, D0_sample=2500.0, v0=110.0, phi0=5.0, f0=0.4)


def _section(start=START, free=FREE):
    section = nlsq_section(start)
    section["fixed"] = [name for name in PARAMETER_NAMES if name not in free]
    return section


def _simulated_bin(q, phi, f0, seed):
    """Dataset and weights of one q bin: model of TRUTH with this bin's f0, plus noise."""
    dt = 10.0 / N
    t = dt * np.arange(1, N + 1)
    n_phi = len(phi)
    clean = np.asarray(
        compute_c2_heterodyne_multiphi(
            as_vector(dict(TRUTH, f0=f0)), t, q, dt, np.asarray(phi), np.full(n_phi, CONTRAST), np.full(n_phi, OFFSET)
        )
    )
    noise = np.triu(np.random.default_rng(seed).normal(0.0, SIGMA, clean.shape), k=1)
    dataset = Dataset(
        c2=clean + noise + np.swapaxes(noise, 1, 2),
        valid=np.ones(clean.shape, dtype=bool),
        t=t,
        phi=np.asarray(phi),
        dt=dt,
        q=q,
        source_path="simulated",
    )
    weights = AngleWeights(
        phi=np.asarray(phi),
        sigma=np.full(n_phi, SIGMA),
        contrast=np.full(n_phi, CONTRAST),
        offset=np.full(n_phi, OFFSET),
        method="uniform",
    )
    return build_problem(dataset, weights)


@pytest.fixture(scope="module")
def bins():
    return [
        QBinProblem(folder, q, _simulated_bin(q, phi, f0, seed=k), None) for k, (folder, q, phi, f0) in enumerate(BINS)
    ]


@pytest.fixture(scope="module")
def fits(bins):
    settings = settings_from_config(_section())
    joint = fit_joint_q(bins, settings)
    separate = [fit_joint(item.problem, settings) for item in bins]
    return joint, separate


def test_joint_fit_recovers_the_truth(fits):
    joint, _ = fits
    assert joint.solver.converged, joint.solver.termination
    assert joint.names == SHARED + ["f0@q0.007", "f0@q0.01"]
    truth = [TRUTH[name] for name in SHARED] + [f0 for *_, f0 in BINS]
    for name, value, se, true in zip(joint.names, joint.x, joint.x_stderr, truth, strict=True):
        assert np.isfinite(se) and se > 0, name
        assert abs(value - true) < 3 * se, f"{name}: {value} +/- {se}, truth {true}"
    for b, (_, _, phi, _) in enumerate(BINS):
        assert joint.thetas[b, INDEX["f0"]] == pytest.approx(joint.x[3 + b])
        fixed = [k for k, name in enumerate(PARAMETER_NAMES) if name not in FREE]
        np.testing.assert_array_equal(joint.thetas[b, fixed], as_vector(TRUTH)[fixed])
        assert np.all(np.abs(joint.contrast[b] - CONTRAST) < 3 * joint.contrast_stderr[b])
        assert len(joint.offset[b]) == len(phi)
    n_pairs = N * (N - 1) // 2
    assert joint.dof == 5 * n_pairs - 5 - 2 * 5
    assert abs(joint.reduced_chi2 - 1.0) < 5 * np.sqrt(2.0 / joint.dof)
    np.testing.assert_allclose(joint.chi2_per_q.sum(), joint.chi2, rtol=1e-12)


def test_joint_stderr_matches_the_combined_per_q_information(fits):
    joint, separate = fits
    precision = np.zeros((len(SHARED), len(SHARED)))
    for fit in separate:
        assert fit.solver.converged, fit.solver.termination
        at = [fit.covariance_names.index(name) for name in SHARED]
        precision += np.linalg.inv(fit.covariance[np.ix_(at, at)])
    predicted = np.sqrt(np.diag(np.linalg.inv(precision)))
    np.testing.assert_allclose(joint.x_stderr[: len(SHARED)], predicted, rtol=0.2)
    # and the joint errors are smaller than either bin's alone
    for fit in separate:
        alone = [fit.theta_stderr[INDEX[name]] for name in SHARED]
        assert np.all(joint.x_stderr[: len(SHARED)] < alone)


def test_memory_bounded_mode_gives_the_same_fit(bins, fits):
    """Above nlsq.jacobian_memory_mb the solver sees the per-bin Schur complements summed (no
    stacked Jacobian): same solution and standard errors."""
    joint, _ = fits
    settings = settings_from_config(_section())._replace(jacobian_budget_bytes=20_000)
    bounded = fit_joint_q(bins, settings)
    assert bounded.solver.chunked and not joint.solver.chunked
    np.testing.assert_allclose(bounded.x, joint.x, rtol=1e-5)
    np.testing.assert_allclose(bounded.x_stderr, joint.x_stderr, rtol=1e-5)


def _speckle_noise(n_phi):
    """Noise models of a bin: the speckle model (frame-shared covariance) at the first angle."""
    lag = np.linspace(0.09, 0.0, N)
    speckle = AngleNoise("speckle", SIGMA, 0.01, np.full(N, 0.1), lag, np.full(N, np.nan), np.full(N, np.nan))
    return (speckle, *[independent_noise(SIGMA, N)] * (n_phi - 1))


@pytest.mark.parametrize("speckle", [False, True])
def test_one_bin_reproduces_the_per_q_fit(bins, speckle):
    """With a single q bin the joint fit is the per-q fit: same chi2, dof and covariance (the
    sandwich covariance too where an angle has the speckle noise model); only the order of the
    names differs (shared parameters first, the fraction as ``f0@folder``)."""
    settings = settings_from_config(_section())
    item = bins[1]
    noise = _speckle_noise(3) if speckle else None
    joint = fit_joint_q([item._replace(noise=noise)], settings)
    alone = fit_joint(item.problem, settings, noise)
    assert joint.dof == alone.dof and joint.chi2 == pytest.approx(alone.chi2, rel=1e-9)
    assert joint.solver.stderr_scaling.startswith(alone.solver.stderr_scaling)
    order = [[name.split("@")[0] for name in joint.covariance_names].index(name) for name in alone.covariance_names]
    scale = np.sqrt(np.outer(np.diag(alone.covariance), np.diag(alone.covariance)))
    for mine, theirs in (
        (joint.covariance, alone.covariance),
        (joint.covariance_independent, alone.covariance_independent),
    ):
        np.testing.assert_allclose(mine[np.ix_(order, order)] / scale, theirs / scale, atol=1e-6)


# ---- command line -------------------------------------------------------------------------------

#: phi0 is free: the single-angle bin at q/2 cannot identify it, the 3-angle bin at q can
CLI_FREE = ["D0_sample", "v0", "f0", "phi0"]


def _ingest_bins(folder, raw, spec):
    """dataset.h5 + weights.json of both q bins of ``raw`` in folder/<q folder>/ (as the workflow lays
    them out, the q folder recorded in the dataset's provenance); returns [(data, weights)]. The
    simulated file has 1 angle at q/2 and 3 at q."""
    cfile = open_correlation_file(raw)
    paths = []
    for name, q in (("q0.005", spec.q / 2), ("q0.01", spec.q)):
        dataset = select_dataset(cfile, sha256_file(raw), q=q)
        data = folder / name / "dataset.h5"
        save_dataset(data, dataset, provenance_record({"dataset": {"file": str(raw)}, "q_bin": name}, [raw]))
        weights = folder / name / "weights.json"
        save_weights(weights, angle_weights(load_dataset(data), "uniform"), provenance_record({}, [data]))
        paths.append((data, weights))
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("joint_q")
    spec = simulate_file(
        folder / "raw.hdf",
        **{
            "parameters": dict(D0_ref=8000.0, D0_sample=12000.0, v0=150.0, f0=0.5),
            "phi": [-20.0, 25.0, 70.0],
            "q": 0.01,
            "n_frames": N,
            "frame_time": 0.01,
            "avg_frame": 10,
            "begin_frame": 100,
            "contrast": [0.15, 0.2, 0.25],
            "offset": [1.0, 1.02, 0.97],
            "noise": [0.005, 0.005, 0.005],
            "seed": 3,
        },
    )
    return folder, spec, _ingest_bins(folder, folder / "raw.hdf", spec)


def _settings(spec):
    start = dict(spec.parameters, D0_sample=10000.0, v0=130.0, f0=0.45, phi0=5.0)
    return [
        "--settings",
        json.dumps({"nlsq": {"initial": start, "fixed": [n for n in PARAMETER_NAMES if n not in CLI_FREE]}}),
    ]


def _run(folder, spec, data, weights, tag):
    out_json, out_h5 = folder / tag / "nlsq.json", folder / tag / "nlsq.h5"
    rc = main(
        [
            "fit-joint-q",
            *_settings(spec),
            "--data",
            *map(str, data),
            "--weights",
            *map(str, weights),
            "--output-json",
            str(out_json),
            "--output-h5",
            str(out_h5),
        ]
    )
    return rc, out_json, out_h5


def test_cli_writes_both_files_with_provenance(files):
    folder, spec, paths = files
    data, weights = [p[0] for p in paths][::-1], [p[1] for p in paths][::-1]  # any order of q
    rc, out_json, out_h5 = _run(folder, spec, data, weights, "joint_q")
    assert rc == 0
    record = json.loads(out_json.read_text())
    assert record["converged"] is True
    assert [(b["folder"], b["n_angles"]) for b in record["q_bins"]] == [("q0.005", 1), ("q0.01", 3)]
    assert record["held_fixed"] == {}
    assert record["q_per_angle"] == [spec.q / 2] + [spec.q] * 3
    assert len(record["phi"]) == len(record["contrast"]) == len(record["reduced_chi2_per_angle"]) == 4
    for name in ("D0_sample", "v0", "phi0", "f0@q0.005", "f0@q0.01"):
        entry = record["parameters"][name]
        truth = spec.parameters[name.split("@")[0]]
        assert abs(entry["value"] - truth) < 3 * entry["stderr"], name
    assert record["parameters"]["f0"]["per_q"] == ["f0@q0.005", "f0@q0.01"]
    assert record["parameters"]["D0_ref"]["fixed"] is True
    assert record["correlation"]["names"] == ["D0_sample", "v0", "phi0", "f0@q0.005", "f0@q0.01"]
    assert record["reduced_chi2"] == pytest.approx(record["chi2"] / record["dof"])
    assert sum(b["chi2"] for b in record["q_bins"]) == pytest.approx(record["chi2"])
    assert set(record["provenance"]["input_sha256"]) == {str(p) for pair in paths for p in pair}
    with h5py.File(out_h5, "r") as f:
        assert read_provenance_attrs(f)["config_sha256"] == record["provenance"]["config_sha256"]
        assert f["values"].shape == (2, 14) and f["stderr"].shape == (2, 14)
        assert f["c2_model/q0.005"].shape == (1, N, N) and f["c2_model/q0.01"].shape == (3, N, N)
        assert json.loads(f["covariance"].attrs["names"])[:5] == record["correlation"]["names"]


def test_bad_input_exits_2_without_outputs(files, tmp_path, capsys):
    folder, spec, paths = files
    (d1, w1), (d2, w2) = paths
    other = tmp_path / "other"
    other_spec = simulate_file(
        tmp_path / "other.hdf",
        **{
            "n_frames": N,
            "phi": [-20.0, 25.0, 70.0],
            "contrast": [0.2] * 3,
            "offset": [1.0] * 3,
            "noise": [0.01] * 3,
            "seed": 9,
        },
    )
    (_, _), (d3, w3) = _ingest_bins(other, tmp_path / "other.hdf", other_spec)
    cases = {
        "counts": ([d1, d2], [w1], "--weights 1"),
        "files": ([d1, d3], [w1, w3], "different source files"),
        "same q": ([d2, d2], [w2, w2], "same q bin"),
    }
    for tag, (data, weights, message) in cases.items():
        rc, out_json, out_h5 = _run(tmp_path, spec, data, weights, tag.replace(" ", "_"))
        err = capsys.readouterr().err
        assert rc == 2, tag
        assert message in err and err.count("\n") == 1, err
        assert not out_json.exists() and not out_h5.exists()
