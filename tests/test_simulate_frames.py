"""Frame-level simulation (`simulate.level: frames`): the field process, the ensemble map against
the model, the file through `heterodyne simulate` and `heterodyne ingest`, and bad settings.

Truth with closed-form trapezoid integrals (J_ref linear in t, J_sample and v constant), so the
expected maps below are written in NumPy without the physics kernel:
C_ref = D0_ref (t^2 - t0^2) / 2, C_sample = D0_sample (t - t0), C_v = v0 (t - t0), and a sample
fraction that grows from 0.3 to about 0.76 over the window (x_r^2 + x_s^2 varies with t).
"""

import json

import cli_args
import h5py
import numpy as np
import pytest

from heterodyne.cli import main
from heterodyne.core.jax_backend import compute_c2_heterodyne
from heterodyne.core.parameters import as_vector
from heterodyne.data.dataset import load_dataset
from heterodyne.simulate.frames import SpeckleSettings, correlator_map, detector_frames, unit_field_frames

TRUTH = dict(D0_ref=10000.0, alpha_ref=1.0, D0_sample=20000.0, v0=500.0, f0=0.2, f1=0.8, f2=1.0, f3=0.1)
Q, DT, T0, N = 0.01, 0.1, 1.0, 16
T = T0 + DT * np.arange(N)


def numpy_grid():
    """(C_ref [A^2], C_sample [A^2], C_v [A], x_s) of TRUTH on T, written from the definitions."""
    c_ref = TRUTH["D0_ref"] * (T**2 - T0**2) / 2
    c_sample = TRUTH["D0_sample"] * (T - T0)
    c_v = TRUTH["v0"] * (T - T0)
    x_s = np.clip(TRUTH["f0"] * np.exp(TRUTH["f1"] * (T - TRUTH["f2"])) + TRUTH["f3"], 0.0, 1.0)
    return c_ref, c_sample, c_v, x_s


def field_correlation(phi):
    """(G, n): the field correlation per mode G_ij = <E_i E_j*> =
    x_r,i x_r,j e^{-q^2 |dC_r| / 2} + x_s,i x_s,j e^{-q^2 |dC_s| / 2} e^{i q cos(phi) (C_v,i - C_v,j)}
    (N, N) complex, and the mean intensity n_i = x_r,i^2 + x_s,i^2 (N,), written in NumPy."""
    c_ref, c_sample, c_v, x_s = numpy_grid()
    x_r = 1.0 - x_s
    lag = lambda c: np.abs(c[None, :] - c[:, None])  # noqa: E731
    field = np.outer(x_r, x_r) * np.exp(-Q * Q * lag(c_ref) / 2) + np.outer(x_s, x_s) * np.exp(
        -Q * Q * lag(c_sample) / 2
    ) * np.exp(1j * Q * np.cos(np.deg2rad(phi)) * (c_v[:, None] - c_v[None, :]))
    return field, x_r**2 + x_s**2


def pooled_map_and_jackknife_se(counts, groups):
    """The correlator's map of all pixels (numerators and denominators averaged over the pixel
    groups before dividing) and its delete-one-group jackknife standard error, both (N, N)."""
    n, pixels = counts.shape
    split = counts.reshape(n, groups, pixels // groups)
    products = np.einsum("igp,jgp->gij", split, split)  # per-group sum of K_i K_j
    sums = split.sum(axis=2).T  # (groups, N) sum of K_i
    kept = pixels - pixels // groups
    mean_left_out = (sums.sum(0) - sums) / kept  # (groups, N) <K_i> without group g
    left_out = (products.sum(0) - products) / kept / (mean_left_out[:, :, None] * mean_left_out[:, None, :])
    spread = ((groups - 1) / groups * ((left_out - left_out.mean(0)) ** 2).sum(0)) ** 0.5
    return correlator_map(counts), spread


def test_field_process_has_the_documented_correlation():
    rng = np.random.default_rng(11)
    c_ref = numpy_grid()[0]
    samples = 40000
    field = np.stack(list(unit_field_frames(rng, c_ref, Q, (samples,))))  # (N, samples)
    iu = np.triu_indices(N)
    products = field[iu[0]] * field[iu[1]].conj()  # E_i E_j*, i <= j
    pseudo = field[iu[0]] * field[iu[1]]  # E_i E_j
    expected = np.exp(-Q * Q * np.abs(c_ref[iu[1]] - c_ref[iu[0]]) / 2)
    assert expected.min() < 0.35  # the window spans the decay
    se = lambda x: x.std(axis=1) / np.sqrt(samples)  # noqa: E731
    z = np.concatenate(
        [
            (products.real.mean(1) - expected) / se(products.real),
            products.imag.mean(1) / se(products.imag),
            pseudo.real.mean(1) / se(pseudo.real),
            pseudo.imag.mean(1) / se(pseudo.imag),
        ]
    )
    assert np.max(np.abs(z)) < 4.5 and 0.6 < np.mean(z**2) < 1.5
    # the intensity decay e^{-q^2 |dC|} (no 1/2) used as the field correlation is rejected
    squared = np.exp(-Q * Q * np.abs(c_ref[iu[1]] - c_ref[iu[0]]))
    assert np.max(np.abs(products.real.mean(1) - squared) / se(products.real)) > 20


@pytest.mark.parametrize("phi, modes, photons", [(30.0, 2, 3.0), (80.0, 4, 0.5)])
def test_pooled_frames_converge_to_the_model_with_contrast_one_over_modes(phi, modes, photons):
    groups, per_group = 40, 5000
    speckle = SpeckleSettings(pixels=groups * per_group, modes=modes, photons_per_pixel=photons)
    params = as_vector(TRUTH)
    counts = detector_frames(np.random.default_rng(5), params, T, DT, Q, phi, speckle)

    # every frame has mean count photons_per_pixel
    mean_count_z = (counts.mean(1) - photons) / (counts.std(1) / np.sqrt(speckle.pixels))
    assert np.max(np.abs(mean_count_z)) < 4.5

    # expected <K_i K_j> / (<K_i><K_j>) by the Gaussian moment theorem, in NumPy:
    # 1 + |G_ij|^2 / (M n_i n_j) + delta_ij / photons; it is the package model with contrast 1/M
    # and offset 1, plus the shot noise 1/photons on the diagonal
    field, norm = field_correlation(phi)
    shot_noise = np.eye(N) / photons
    expected = 1.0 + np.abs(field) ** 2 / (modes * np.outer(norm, norm)) + shot_noise
    model = np.asarray(compute_c2_heterodyne(params, T, Q, DT, phi, 1.0 / modes, 1.0))
    np.testing.assert_allclose(model + shot_noise, expected, rtol=1e-12, atol=1e-12)

    pooled, se = pooled_map_and_jackknife_se(counts, groups)
    iu = np.triu_indices(N)
    z = ((pooled - expected) / se)[iu]
    assert np.max(np.abs(z)) < 4.5 and 0.5 < np.mean(z**2) < 1.6
    # the test resolves the heterodyne normalisation: |G|^2 / M not divided by n_i n_j is off by
    # many standard errors
    unnormalised = 1.0 + np.abs(field) ** 2 / modes + shot_noise
    assert np.max(np.abs((pooled - unnormalised) / se)[iu]) > 10


CONFIG = (
    "datasets:\n  demo: {file: frames.hdf, simulate: true, q: 0.01}\n"
    "simulate: {level: frames, n_frames: 24, phi: [10.0, 50.0], begin_frame: 100, "
    "pixels: 2000, modes: 3, photons_per_pixel: 4.0, seed: 4}\n"
)


def test_cli_writes_frame_level_maps_that_ingest_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text(CONFIG)
    assert main(["simulate", *cli_args.settings("config.yaml", "simulate"), "--output", "frames.hdf"]) == 0
    assert cli_args.ingest("config.yaml", "demo", "results/demo/q0.01/dataset.h5") == 0
    dataset = load_dataset("results/demo/q0.01/dataset.h5")
    assert dataset.c2.shape == (2, 24, 24) and list(dataset.phi) == [10.0, 50.0]
    np.testing.assert_allclose(dataset.t, 1.0 + 0.1 * np.arange(24), rtol=1e-12)
    assert dataset.dt == pytest.approx(0.1) and dataset.q == pytest.approx(0.01)
    with h5py.File("frames.hdf", "r") as f:
        truth = json.loads(f.attrs["simulation_truth"])
        stored = f["xpcs/twotime/correlation_map/c2_00001"][()]
    assert truth["level"] == "frames"
    assert truth["speckle"] == dict(pixels=2000, modes=3, photons_per_pixel=4.0)
    assert truth["contrast"] == [1 / 3, 1 / 3] and truth["offset"] == [1.0, 1.0] and truth["noise"] is None
    assert stored.dtype == np.float32 and np.all(np.tril(stored, -1) == 0)
    # raw diagonal: 1 + 1/M + 1/photons = 1.5833 (its spread over the 24 frames sets the tolerance)
    diagonal = np.diag(stored).astype(float)
    assert abs(diagonal.mean() - (1 + 1 / 3 + 1 / 4)) < 5 * diagonal.std() / np.sqrt(24)
    # ingest keeps that raw diagonal for the noise model (c2 itself gets the neighbours' mean there)
    np.testing.assert_array_equal(dataset.raw_diagonal[0], diagonal)
    assert not np.allclose(np.diag(dataset.c2[0]), diagonal)


def test_level_defaults_to_maps_and_the_truth_says_so(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "datasets:\n  demo: {file: maps.hdf, simulate: true}\n"
        "simulate: {n_frames: 8, phi: [0.0], contrast: [0.2], offset: [1.0], noise: [0.01]}\n"
    )
    out = tmp_path / "maps.hdf"
    assert main(["simulate", *cli_args.settings(config, "simulate"), "--output", str(out)]) == 0
    with h5py.File(out, "r") as f:
        truth = json.loads(f.attrs["simulation_truth"])
    assert truth["level"] == "maps" and truth["speckle"] is None
    assert truth["contrast"] == [0.2] and truth["noise"] == [0.01] and truth["diagonal_excess"] == 0.05


@pytest.mark.parametrize(
    "simulate, names",
    [
        ("{level: frames, modes: 0}", ["'simulate/modes'", "minimum of 1"]),
        ("{level: frames, contrast: [0.2]}", ["simulate.contrast", "1/modes"]),
        ("{pixels: 500}", ["simulate.pixels", "level: frames"]),
        (
            "{level: frames, n_frames: 6, pixels: 10, photons_per_pixel: 0.0001}",
            ["received no photon", "'simulate.photons_per_pixel'"],
        ),
    ],
    ids=["modes-zero", "contrast-with-frames", "pixels-with-maps", "too-few-photons"],
)
def test_bad_frame_settings_give_one_line_naming_the_key(tmp_path, capsys, simulate, names):
    config = tmp_path / "config.yaml"
    config.write_text(f"datasets:\n  demo: {{file: demo.hdf, simulate: true}}\nsimulate: {simulate}\n")
    out = tmp_path / "demo.hdf"
    assert main(["simulate", *cli_args.settings(config, "simulate"), "--output", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and all(name in error for name in names) and not out.exists()
