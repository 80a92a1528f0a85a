"""`heterodyne figures` on a small saved result set (tests/figures_fixtures.py).

Checks: every figure exists as PNG (200 dpi, expected pixel size, not blank), PDF and caption;
the numbers behind the figures (residual maps, one-time cuts, noise per lag bin, physics curves
and their CMC bands, 90 % intervals) against NumPy re-derivations; provenance in the PNG; bad
input.
"""

import json
import shutil

import figures_fixtures as ff
import numpy as np
import pytest
import yaml
from matplotlib import image as mpimg
from matplotlib import pyplot as plt
from PIL import Image
from scipy.stats import norm

from heterodyne.cli import main
from heterodyne.config import validate_config
from heterodyne.core.parameters import INDEX, as_vector
from heterodyne.data.dataset import load_dataset
from heterodyne.plots.c2_maps import block_factor, block_mean, block_residual, draw_c2_maps, normalised_residual
from heterodyne.plots.nlsq_vs_cmc import Z90, nlsq_interval
from heterodyne.plots.noise_vs_lag import N_BINS, angle_noises, draw_noise_vs_lag, write_noise_vs_lag
from heterodyne.plots.one_time_cuts import age_indices, cut
from heterodyne.plots.physics_curves import bands, evaluate_curves, parameter_draws, thin_indices
from heterodyne.plots.saved_results import CmcResult, load_cmc
from heterodyne.provenance import config_hash
from heterodyne.weighting.weights_file import AngleWeights, load_weights

SAMPLED = 10  # 14 parameters minus the 4 fixed ones in the fixture
#: stem -> (width, height) in pixels at 200 dpi, from the figure sizes in inches
EXPECTED_PIXELS = {
    "c2_maps_phi00": (2400, 800),
    "c2_maps_phi01": (2400, 800),  # 12 x 4 in
    "one_time_cuts": (1600, 640),  # 2 panels of 4 x 3.2 in
    "noise_vs_lag": (1600, 640),  # 2 panels of 4 x 3.2 in
    "physics_curves": (1800, 1200),  # 9 x 6 in
    "cmc_corner": (2600, 2600),  # 1.3 in per sampled parameter (10)
    "cmc_trace_shard00": (1600, 2320),
    "cmc_trace_shard01": (1600, 2320),  # 8 x (1.1 x 10 + 0.6) in
    "cmc_shards": (2400, 1440),  # 4 x 3 panels of 3 x 2.4 in
    "nlsq_vs_cmc": (2080, 2640),  # 4 x 6 panels of 2.6 x 2.2 in
}


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    return ff.build_figures(tmp_path_factory.getbasetemp() / "saved_results")


@pytest.fixture(scope="session")
def figures(saved):
    return saved["results"] / "figures"


def test_every_figure_is_a_nonblank_png_of_the_expected_size_with_pdf_and_caption(figures):
    assert sorted(p.stem for p in figures.glob("*.png")) == sorted(EXPECTED_PIXELS)
    for stem, (width, height) in EXPECTED_PIXELS.items():
        with Image.open(figures / f"{stem}.png") as img:
            assert img.size == (width, height), stem
            assert img.info["dpi"] == pytest.approx((200, 200), abs=0.01), stem
        pixels = mpimg.imread(figures / f"{stem}.png")[..., :3]
        inked = np.mean(pixels.min(axis=-1) < 0.9)  # fraction of pixels that are not near-white
        assert 0.02 < inked < 0.9, (stem, inked)
        pdf = (figures / f"{stem}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and len(pdf) > 5000, stem
        caption = (figures / f"{stem}.rst").read_text()
        assert f"**{ff.NAME}**" in caption and "$" not in caption, stem


def test_caption_reports_the_angle_and_its_reduced_chi2(saved, figures):
    chi2 = saved["nlsq"]["reduced_chi2_per_angle"]
    for a, phi in enumerate(ff.PHI):
        caption = (figures / f"c2_maps_phi{a:02d}.rst").read_text()
        assert f"phi = {phi:g} deg" in caption and f"{chi2[a]:.4f}" in caption
    assert "t1 = 0, 0.8, 1.6, 2.3 s" in (figures / "one_time_cuts.rst").read_text()


def test_trace_captions_give_the_shard_flag_and_its_reasons(figures):
    flagged = " ".join((figures / f"cmc_trace_shard{ff.FLAGGED_SHARD:02d}.rst").read_text().split())
    reasons = "; ".join(ff.SHARD_DIAGNOSTICS[ff.FLAGGED_SHARD]["flag_reasons"])
    assert f"flagged: yes ({reasons})." in flagged and "Divergences: 7;" in flagged
    assert "flagged: no." in " ".join((figures / "cmc_trace_shard00.rst").read_text().split())


def test_png_carries_the_provenance_of_the_figures_config(saved, figures):
    config = validate_config(yaml.safe_load(saved["config"].read_text()))
    section = {"dataset": config["datasets"][ff.NAME], "figures": config["figures"]}
    with Image.open(figures / "physics_curves.png") as img:
        record = json.loads(img.text["provenance"])
    assert record["config_sha256"] == config_hash(section)
    assert str(saved["results"] / "nlsq.json") in record["input_sha256"]


def test_residual_map_is_data_minus_model_over_sigma_with_diagonal_and_invalid_masked(saved):
    data, model, valid = saved["data"], saved["clean"], saved["valid"]
    for a in range(len(ff.PHI)):
        r = normalised_residual(data[a], model[a], valid[a], ff.SIGMA)
        assert np.all(np.isnan(np.diag(r)))
        i, j = np.triu_indices(ff.N_TIMES, k=1)
        expected = (data[a][i, j] - model[a][i, j]) / ff.SIGMA
        ok = valid[a][i, j]
        np.testing.assert_allclose(r[i, j][ok], expected[ok], rtol=1e-12)
        assert np.isnan(r[i, j][~ok]).sum() == 1  # one invalid pair per angle in the fixture
        # the data are the true model + N(0, sigma): mean squared residual ~ 1 (496 pairs, sd ~ 0.06)
        assert np.nanmean(r[i, j] ** 2) == pytest.approx(1.0, abs=0.25)


def test_data_and_model_share_one_colour_scale_and_residuals_are_symmetric(saved):
    dataset = load_dataset(saved["results"] / "dataset.h5")
    fig, (lo, hi) = draw_c2_maps(
        dataset.t, dataset.dt, dataset.c2[0], saved["clean"][0], dataset.valid[0], ff.SIGMA, 3.0, "test"
    )
    limits = [ax.images[0].get_clim() for ax in fig.axes if ax.images]
    assert limits[0] == limits[1] == (lo, hi)
    assert limits[2] == (-3.0, 3.0)
    # contrast 0.2 at phi = 10 deg: c2 runs from ~offset (1.0) to ~offset + contrast near the diagonal
    assert 0.96 < lo < 1.01 and 1.15 < hi < 1.23
    # axes in seconds: t = k dt, k = 0..31, pixels centred on t
    assert fig.axes[0].images[0].get_extent() == pytest.approx([-0.05, 3.15, -0.05, 3.15])


def test_large_maps_are_shown_block_reduced_keeping_means_and_unit_residual_variance():
    assert [block_factor(n) for n in (32, 800, 801, 8000)] == [1, 1, 2, 10]
    image = np.arange(25.0).reshape(5, 5)
    image[0, 1] = np.nan
    reduced = block_mean(image, 2)
    assert reduced.shape == (3, 3)
    assert reduced[0, 0] == pytest.approx((0 + 5 + 6) / 3)  # NaN element left out
    assert reduced[2, 2] == 24.0 and reduced[1, 2] == pytest.approx((14 + 19) / 2)  # padded edge blocks
    z = np.random.default_rng(3).normal(size=(1000, 1000))
    assert np.std(block_residual(z, 4)) == pytest.approx(1.0, abs=0.02)  # 62500 blocks
    assert np.std(block_mean(z, 4)) == pytest.approx(0.25, abs=0.01)  # for contrast: plain mean shrinks


def test_one_time_cut_follows_a_row_of_the_map_from_lag_one():
    c2 = np.arange(25.0).reshape(5, 5)
    valid = np.ones((5, 5), bool)
    k, values, ok = cut(c2, valid, 1)
    assert k.tolist() == [1, 2, 3] and values.tolist() == [7.0, 8.0, 9.0] and ok.all()
    assert age_indices(32, 4).tolist() == [0, 8, 16, 23]  # round(0.75 * 31 * m / 3)
    assert age_indices(32, 1).tolist() == [0]


def _lag_bin_rms(spread, dt):
    """(lag [s], rms) per bin with a finite value: lag k in bin b iff N^b <= k^N_BINS < N^(b+1)
    (exact integer arithmetic), lag = geometric mean of the bin's k times dt."""
    n = len(spread)
    lags, rms = [], []
    for b in range(N_BINS):
        ks = [k for k in range(1, n) if n**b <= k**N_BINS < n ** (b + 1) and np.isfinite(spread[k])]
        if ks:
            lags.append(float(np.prod(ks, dtype=float)) ** (1.0 / len(ks)) * dt)
            rms.append(np.sqrt(np.mean(spread[ks] ** 2)))
    return np.array(lags), np.array(rms)


def _lines(ax):
    """{label: (x, y)} of the lines drawn in ``ax``."""
    return {line.get_label(): (line.get_xdata(), line.get_ydata()) for line in ax.lines}


def test_noise_vs_lag_plots_the_rms_per_log_lag_bin_of_the_measured_and_model_spread(saved):
    weights = load_weights(saved["results"] / "weights.json")
    fig = draw_noise_vs_lag(ff.DT, ff.PHI, weights.noise)
    for a, noise in enumerate(weights.noise):
        lines = _lines(fig.axes[a])
        for label, spread in (("measured", noise.lag_spread), ("model", noise.lag_spread_model)):
            lag, rms = _lag_bin_rms(spread, ff.DT)
            np.testing.assert_allclose(lines[label][0], lag, rtol=1e-12)
            np.testing.assert_allclose(lines[label][1], rms, rtol=1e-12)
    # N = 32: lags 1..7 each fill a bin of their own; d needs k <= N - 3, so lags 30 and 31 have none
    measured = weights.noise[0].lag_spread
    assert _lines(fig.axes[0])["measured"][1][:7] == pytest.approx(measured[1:8], rel=1e-12)
    assert np.isnan(measured[30:]).all() and np.isfinite(measured[1:30]).all()
    # independent noise of sd 0.01: the model line is sigma itself, the measured spread near it
    assert np.all(_lines(fig.axes[0])["model"][1] == ff.SIGMA)
    assert np.sqrt(np.mean(measured[1:30] ** 2)) == pytest.approx(ff.SIGMA, rel=0.2)
    plt.close(fig)


def test_noise_vs_lag_caption_names_each_angles_model(saved, figures):
    kappa = load_weights(saved["results"] / "weights.json").noise[ff.SPECKLE_ANGLE].kappa
    caption = " ".join((figures / "noise_vs_lag.rst").read_text().split())
    assert f"Models: phi = 10 deg: independent, sigma = 0.01; phi = 70 deg: speckle, kappa = {kappa:.3g}." in caption
    assert f"{N_BINS} logarithmic lag bins" in caption and "No spread was measured" not in caption


def test_weights_without_noise_models_show_the_constant_sigma_and_say_nothing_was_measured(saved, tmp_path):
    dataset = load_dataset(saved["results"] / "dataset.h5")
    old = AngleWeights(
        phi=ff.PHI, sigma=np.array([0.01, 0.02]), contrast=ff.CONTRAST, offset=ff.OFFSET, method="robust"
    )
    write_noise_vs_lag(tmp_path, dataset, old, ff.NAME, {})
    caption = " ".join((tmp_path / "noise_vs_lag.rst").read_text().split())
    assert "No spread was measured at phi = 10, 70 deg" in caption
    assert "phi = 70 deg: independent, sigma = 0.02" in caption
    fig = draw_noise_vs_lag(dataset.dt, dataset.phi, angle_noises(old, ff.N_TIMES))
    for ax, sigma in zip(fig.axes, old.sigma, strict=True):
        lines = _lines(ax)
        assert list(lines) == ["model"] and np.all(lines["model"][1] == sigma)
    plt.close(fig)


def _numpy_curves(p, t):
    """Independent NumPy re-derivation of J_ref, J_sample, v, x_s (t^a := 0 for t <= 0)."""

    def power(amplitude, exponent):
        return np.where(t > 0, amplitude * np.where(t > 0, t, 1.0) ** exponent, 0.0)

    return {
        "J_ref": np.maximum(power(p["D0_ref"], p["alpha_ref"]) + p["D_offset_ref"], 0.0),
        "J_sample": np.maximum(power(p["D0_sample"], p["alpha_sample"]) + p["D_offset_sample"], 0.0),
        "v": power(p["v0"], p["beta"]) + p["v_offset"],
        "x_s": np.clip(p["f0"] * np.exp(p["f1"] * (t - p["f2"])) + p["f3"], 0.0, 1.0),
    }


def test_physics_curves_at_nlsq_values_match_numpy():
    t = np.linspace(0.0, 3.1, 50)
    curves = evaluate_curves(as_vector(ff.TRUTH), t)
    for name, expected in _numpy_curves(ff.TRUTH, t).items():
        np.testing.assert_allclose(curves[name][0], expected, rtol=1e-12, atol=1e-12)
    # spot value: J_sample(1 s) = D0_sample * 1^0.3 = 2e4 A^2/s
    assert curves["J_sample"][0][np.argmin(abs(t - 1.0))] == pytest.approx(2e4 * t[np.argmin(abs(t - 1.0))] ** 0.3)


def test_cmc_bands_use_draws_for_sampled_and_nlsq_values_for_fixed_parameters(saved):
    cmc = load_cmc(saved["results"] / "cmc" / "summary.json", saved["results"] / "cmc" / "combined.h5")
    nlsq_values = as_vector(ff.TRUTH)
    sets = parameter_draws(nlsq_values, cmc.draws, 100)
    rows = thin_indices(ff.N_CHAINS * ff.N_DRAWS, 100)
    assert sets.shape == (100, 14)
    for name in ff.FIXED:
        assert np.all(sets[:, INDEX[name]] == ff.TRUTH[name])
    np.testing.assert_array_equal(sets[:, INDEX["f0"]], saved["combined"]["f0"][rows])
    # x_s(0) = f0 exp(-f1 f2) + f3 = f0 + f3 (f2 = 0 fixed): the band is the 5/95 % quantile of f0 + f3
    low, high = bands(evaluate_curves(sets, np.array([0.0, 1.0])))["x_s"]
    f0_f3 = np.clip(saved["combined"]["f0"][rows] + saved["combined"]["f3"][rows], 0, 1)
    assert low[0] == pytest.approx(np.quantile(f0_f3, 0.05), rel=1e-12)
    assert high[0] == pytest.approx(np.quantile(f0_f3, 0.95), rel=1e-12)


def test_thinning_is_even_and_never_exceeds_the_draws():
    assert thin_indices(300, 3).tolist() == [0, 150, 299]
    assert thin_indices(5, 1000).tolist() == [0, 1, 2, 3, 4]


def test_ninety_percent_intervals():
    assert Z90 == pytest.approx(norm.ppf(0.95), rel=1e-12)
    assert nlsq_interval(2.0, 0.5) == pytest.approx((2.0, 2.0 - 0.5 * norm.ppf(0.95), 2.0 + 0.5 * norm.ppf(0.95)))
    assert nlsq_interval(2.0, None) == (2.0, 2.0, 2.0)
    x = np.random.default_rng(1).normal(size=2001)
    from_draws = CmcResult(summary={"parameters": {}}, draws={"v0": x}, shard_draws=[])
    assert from_draws.interval("v0") == pytest.approx((np.median(x), np.quantile(x, 0.05), np.quantile(x, 0.95)))
    listed = CmcResult(
        summary={"parameters": {"v0": {"q05": -1.0, "q50": 0.5, "q95": 2.0}}}, draws={"v0": x}, shard_draws=[]
    )
    assert listed.interval("v0") == (0.5, -1.0, 2.0)


def test_bad_nlsq_file_exits_2_naming_it_and_leaves_existing_figures_alone(saved, tmp_path, capsys):
    broken = tmp_path / "nlsq.json"
    record = dict(saved["nlsq"])
    record["parameters"] = {k: v for k, v in record["parameters"].items() if k != "v0"}
    broken.write_text(json.dumps(record))
    outdir = tmp_path / "figures"
    outdir.mkdir()
    (outdir / "keep.txt").write_text("old")
    args = ff.figure_args(saved, outdir)
    args[args.index("--nlsq-json") + 1] = str(broken)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "v0" in err and "fit-nlsq" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left
    assert [p.name for p in outdir.iterdir()] == ["keep.txt"]


def test_missing_shard_file_is_an_input_error(saved, tmp_path, capsys):
    cmc = tmp_path / "cmc"
    shutil.copytree(saved["results"] / "cmc", cmc)
    (cmc / "shard_1.h5").unlink()
    args = ff.figure_args(saved, tmp_path / "figures")
    args[args.index("--cmc-json") + 1] = str(cmc / "summary.json")
    args[args.index("--cmc-h5") + 1] = str(cmc / "combined.h5")
    assert main(args) == 2
    assert "shard_1.h5" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists()
