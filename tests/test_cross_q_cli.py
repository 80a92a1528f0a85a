"""`heterodyne cross-q` on synthetic per-q result folders, its figures and the index page's cross-q
section. (The end-to-end size and power check with real NLSQ fits of simulated maps takes ~90 s and
lives in benchmarks/cross_q_size.py.)

The synthetic folders are written with the package's own writers: dataset.h5 by ``save_dataset``
(a tiny map: only q and the time grid are read), nlsq.json/.h5 by ``fit.results.save_results`` of
an :class:`~heterodyne.fit.joint_fit.NlsqFit` holding chosen estimates and covariance, and
cmc/summary.json in the cmc-combine layout (parameters -> mean, sd, q05, q50, q95; shards,
flagged_shards, combined, limits, undetermined as the index page reads them).
"""

import json
from pathlib import Path

import cli_args
import numpy as np
import pytest
from nlsq_fixtures import TRUTH
from scipy import stats

from heterodyne.cli import main
from heterodyne.core.parameters import INDEX, PARAMETER_NAMES, as_vector
from heterodyne.data.dataset import Dataset, save_dataset
from heterodyne.fit.joint_fit import NlsqFit
from heterodyne.fit.nlsq_solver import SolverStats
from heterodyne.fit.results import save_results
from heterodyne.lineage import read_provenance
from heterodyne.plots.cross_q import draw_rates
from heterodyne.provenance import provenance_record

FREE = ["D0_ref", "alpha_ref", "D0_sample", "v0", "f0"]
SE = {"D0_ref": 20.0, "alpha_ref": 0.01, "D0_sample": 40.0, "v0": 1.5, "f0": 0.01}
Q = [0.005, 0.0075, 0.01]  # 1/A
N_TIMES, DT = 8, 0.5  # the tiny time grid of dataset.h5: t = 1.0 .. 4.5 s


def _covariance(rng, names):
    """A random positive-definite covariance over ``names`` with sd SE (correlations up to ~0.5)."""
    a = rng.normal(size=(len(names), len(names)))
    corr = a @ a.T / len(names) + np.eye(len(names))
    d = 1.0 / np.sqrt(np.diag(corr))
    corr = corr * d[:, None] * d[None, :]
    sd = np.array([SE[n] for n in names])
    return corr * sd[:, None] * sd[None, :]


def _fit(values, free, cov):
    """NlsqFit with ``values`` (dict), ``free`` names and their covariance ``cov``; one angle."""
    theta = as_vector(values)
    n = len(free)
    full = np.eye(n + 2) * 1e-6
    full[:n, :n] = cov
    se = np.sqrt(np.diag(full))
    stderr = np.full(len(PARAMETER_NAMES), np.nan)
    for k, name in enumerate(free):
        stderr[INDEX[name]] = se[k]
    return NlsqFit(
        theta=theta,
        theta_stderr=stderr,
        free_names=list(free),
        contrast=np.array([0.3]),
        contrast_stderr=np.array([1e-3]),
        offset=np.array([1.0]),
        offset_stderr=np.array([1e-3]),
        covariance=full,
        covariance_independent=full,
        covariance_names=list(free) + ["contrast_0", "offset_0"],
        correlation=full / se[:, None] / se[None, :],
        chi2=30.0,
        chi2_per_angle=np.array([30.0]),
        n_valid_per_angle=np.array([28]),
        dof=28 - n - 2,
        reduced_chi2=30.0 / (26 - n),
        reduced_chi2_per_angle=np.array([30.0 / (26 - n)]),
        at_bound=np.zeros(14, bool),
        solver=SolverStats(
            converged=True,
            termination="ftol",
            n_iterations=5,
            n_function_evals=6,
            wall_time_s=0.1,
            stderr_scaling="scaled",
            chunked=False,
            n_starts=1,
            undetermined=[],
        ),
    )


def _summary(values, free, cov, rng):
    """cmc/summary.json in the cmc-combine layout, draws ~ N(values, cov) over ``free``."""
    draws = rng.multivariate_normal([values[n] for n in free], cov, size=400)
    parameters = {}
    for k, name in enumerate(free):
        q05, q50, q95 = np.percentile(draws[:, k], [5, 50, 95])
        parameters[name] = {
            "mean": float(draws[:, k].mean()),
            "sd": float(draws[:, k].std(ddof=1)),
            "q05": float(q05),
            "q50": float(q50),
            "q95": float(q95),
            "r_hat": 1.0,
            "ess_bulk": 800.0,
            "ess_tail": 800.0,
        }
    return {
        "parameters": parameters,
        "combined": {"flagged": False, "flag_reasons": []},
        "shards": [],
        "num_shards": 0,
        "flagged_shards": [],
        "nlsq_comparison": {},
        "undetermined": [],
        "limits": {"undetermined_sd_ratio": 0.3},
        "provenance": provenance_record({}, [], ["heterodyne", "cmc-combine"]),
    }


def write_bin(folder, q, values, free=FREE, cov=None, rng=None, cmc=True, report=False):
    """A per-q results folder: dataset.h5, nlsq.json/.h5 (recording dataset.h5 as input),
    optionally cmc/summary.json and a placeholder report.html."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t = DT * np.arange(2, N_TIMES + 2)
    dataset = Dataset(
        c2=np.ones((1, N_TIMES, N_TIMES)),
        valid=np.ones((1, N_TIMES, N_TIMES), bool),
        t=t,
        phi=np.array([0.0]),
        dt=DT,
        q=q,
        source_path="synthetic",
    )
    # each file's provenance names the step that writes it, as in the workflow (the audit groups by step)
    save_dataset(folder / "dataset.h5", dataset, provenance_record({"test": "cross-q"}, [], ["heterodyne", "ingest"]))
    fit = _fit(values, free, cov)
    save_results(
        folder / "nlsq.json",
        folder / "nlsq.h5",
        fit,
        [0.0],
        np.ones((1, N_TIMES, N_TIMES)),
        provenance_record({"test": "nlsq"}, [folder / "dataset.h5"], ["heterodyne", "fit-nlsq"]),
    )
    if cmc:
        (folder / "cmc").mkdir(exist_ok=True)
        (folder / "cmc" / "summary.json").write_text(json.dumps(_summary(values, free, cov, rng)))
    if report:
        (folder / "report.html").write_text("<html>placeholder</html>")
    return folder


def write_dataset(root, name, seed, scale_d0=False, q=Q, cmc=(True, False, True), report=False):
    """Folders results/<name>/q<q> drawn around TRUTH (each bin theta ~ N(truth_q, Cov_q)); with
    ``scale_d0`` the true D0_sample is 3000 q / q[0]. Returns (folders, theta (n_q, p), cov)."""
    rng = np.random.default_rng(seed)
    folders, thetas, covs = [], [], []
    for k, qk in enumerate(q):
        truth = dict(TRUTH)
        if scale_d0:
            truth["D0_sample"] = TRUTH["D0_sample"] * qk / q[0]
        cov = _covariance(rng, FREE)
        theta = rng.multivariate_normal([truth[n] for n in FREE], cov)
        values = {**truth, **dict(zip(FREE, theta, strict=True))}
        folders.append(
            write_bin(root / name / f"q{qk:g}", qk, values, cov=cov, rng=rng, cmc=cmc[k % len(cmc)], report=report)
        )
        thetas.append(theta)
        covs.append(cov)
    return folders, np.array(thetas), np.array(covs)


def run_cross_q(folders, out, *extra):
    return main(
        [
            "cross-q",
            "--folders",
            *map(str, folders),
            "--output-json",
            str(out / "cross_q.json"),
            "--outdir",
            str(out / "cross_q"),
            *extra,
        ]
    )


def _direct_tests(theta, cov):
    """Joint and per-parameter chi2 by direct NumPy (the formulas of the study module's docstring)."""
    w = [np.linalg.inv(c) for c in cov]
    mean = np.linalg.solve(sum(w), sum(wk @ tk for wk, tk in zip(w, theta, strict=True)))
    chi2 = sum((tk - mean) @ wk @ (tk - mean) for wk, tk in zip(w, theta, strict=True))
    var = np.array([np.diag(c) for c in cov])
    m = np.sum(theta / var, axis=0) / np.sum(1.0 / var, axis=0)
    chi2_each = np.sum((theta - m) ** 2 / var, axis=0)
    return mean, chi2, chi2_each


TESTED = ["D0_ref", "alpha_ref", "D0_sample", "v0"]  # FREE without the fraction f0


def test_q_independent_truth_matches_direct_numpy_and_is_not_flagged(tmp_path):
    folders, theta, cov = write_dataset(tmp_path / "results", "A", seed=11)
    out = tmp_path / "results" / "A"
    assert run_cross_q(folders[::-1], out) == 0  # any order of --folders
    record = json.loads((out / "cross_q.json").read_text())
    assert record["q"] == Q and record["dataset"] == "A"
    test = record["test"]
    assert test["names"] == TESTED and record["reason"] is None
    at = [FREE.index(n) for n in TESTED]
    mean, chi2, chi2_each = _direct_tests(theta[:, at], cov[:, at][:, :, at])
    assert test["joint"]["chi2"] == pytest.approx(chi2, rel=1e-9)
    assert test["joint"]["dof"] == len(TESTED) * (len(Q) - 1)
    assert test["joint"]["p"] == pytest.approx(stats.chi2.sf(chi2, len(TESTED) * 2), rel=1e-9)
    for k, name in enumerate(TESTED):
        entry = test["parameters"][name]
        assert entry["mean"] == pytest.approx(mean[k], rel=1e-9)
        assert entry["chi2"] == pytest.approx(chi2_each[k], rel=1e-9)
        assert entry["p"] == pytest.approx(np.exp(-chi2_each[k] / 2), rel=1e-9)  # chi2 sf, 2 dof
    assert record["q_dependent"] is False and record["significant"] == []
    left = {e["name"]: e["reason"] for e in record["left_out"]}
    assert "fraction" in left["f0"] and left["beta"] == "fixed in every fit"
    # per-q estimates: NLSQ as written, CMC where a summary exists (not at the middle bin)
    d0 = record["estimates"]["D0_sample"]
    assert [e["value"] for e in d0["nlsq"]] == pytest.approx(theta[:, FREE.index("D0_sample")], rel=1e-12)
    assert d0["cmc"][1] is None and d0["cmc"][0]["q05"] < d0["cmc"][0]["q50"] < d0["cmc"][0]["q95"]
    assert record["estimates"]["beta"]["nlsq"][0] == {"value": 0.4, "stderr": None, "fixed": True}
    # provenance: the nlsq.json, dataset.h5 and the two summary.json files read
    inputs = record["provenance"]["input_sha256"]
    assert sum(p.endswith("nlsq.json") for p in inputs) == 3 and sum(p.endswith("summary.json") for p in inputs) == 2
    assert main(["audit", str(tmp_path / "results"), "--output", str(tmp_path / "audit.json")]) == 0


def test_d0_scaled_with_q_is_flagged_and_the_index_page_shows_it(tmp_path):
    root = tmp_path / "results"
    folders, _, _ = write_dataset(root, "B", seed=12, scale_d0=True, cmc=(True,), report=True)
    assert run_cross_q(folders, root / "B") == 0
    record = json.loads((root / "B" / "cross_q.json").read_text())
    assert record["q_dependent"] is True
    assert record["significant"] == ["D0_sample"]
    assert record["test"]["parameters"]["D0_sample"]["p_holm"] < 1e-6
    # a second dataset without cross_q.json keeps the plain index row
    write_dataset(root, "C", seed=13, q=[0.01], report=True)
    (root / "audit.json").write_text(json.dumps({"passed": True, "files": [], "not_audited": 0}))
    assert cli_args.index_page(root) == 0
    index = (root / "index.html").read_text()
    assert "Significant q-dependence of D0_sample: evidence against the model over this q range" in index
    assert '<li class="warn"><a href="#cross-q-B">B</a>' in index  # flagged at the top
    assert 'id="cross-q-B"' in index and 'id="cross-q-C"' not in index
    assert index.count("data:image/png;base64") == 2  # both figures embedded
    assert '<a href="C/q0.01/report.html">' in index
    assert any(p.endswith("B/cross_q.json") for p in read_provenance(root / "index.html")["input_sha256"])


def test_single_q_bin_writes_estimates_without_a_test(tmp_path):
    folders, _, _ = write_dataset(tmp_path / "results", "S", seed=14, q=[0.01])
    out = tmp_path / "out"
    assert run_cross_q(folders, out) == 0
    record = json.loads((out / "cross_q.json").read_text())
    assert record["test"] is None and record["q_dependent"] is None
    assert "at least 2 q bins" in record["reason"]
    assert record["estimates"]["D0_sample"]["nlsq"][0]["value"] is not None
    assert all(
        (out / "cross_q" / f"{stem}.{ext}").is_file()
        for stem in ("cross_q_parameters", "cross_q_rates")
        for ext in ("png", "pdf", "rst")
    )


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_nlsq_json_exits_2_and_writes_nothing(tmp_path, capsys, damage):
    folders, _, _ = write_dataset(tmp_path / "results", "M", seed=15, q=[0.005, 0.01])
    broken = folders[1] / "nlsq.json"
    if damage == "missing":
        broken.unlink()
    else:
        broken.write_text(broken.read_text()[:200])
    out = tmp_path / "out"
    assert run_cross_q(folders, out) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_figures_and_reference_lines_through_the_weighted_mean(tmp_path):
    folders, theta, cov = write_dataset(tmp_path / "results", "F", seed=16)
    joint_dir = write_bin(
        tmp_path / "results" / "F" / "joint_q",
        0.0075,
        TRUTH,
        cov=_covariance(np.random.default_rng(1), FREE),
        cmc=False,
    )
    # the joint fit's keys beyond the per-q nlsq.json (fit.joint_q_results.JOINT_KEYS)
    joint = json.loads((joint_dir / "nlsq.json").read_text())
    joint.update(
        shared_parameters=list(FREE),
        fraction_parameters=[],
        q_per_angle=[0.0075],
        q_bins=[{"folder": f.name, "q": q} for f, q in zip(folders, Q, strict=True)],
    )
    (joint_dir / "nlsq.json").write_text(json.dumps(joint))
    out = tmp_path / "results" / "F"
    # the joint posterior (cmc-joint-q layout: the shared parameters' summary and its flags)
    posterior = {
        **_summary(TRUTH, TESTED, np.diag([1e4, 1e-4, 4e4, 4.0]), np.random.default_rng(2)),
        "shared_parameters": TESTED,
        "flagged": True,
        "flag_reasons": ["per-q posteriors disagree"],
    }
    (joint_dir / "cmc").mkdir()
    (joint_dir / "cmc" / "summary.json").write_text(json.dumps(posterior))
    assert run_cross_q(folders, out, "--joint-cmc", str(joint_dir / "cmc" / "summary.json")) == 2
    assert not (out / "cross_q.json").exists()
    assert (
        run_cross_q(
            folders,
            out,
            "--joint",
            str(joint_dir / "nlsq.json"),
            "--joint-cmc",
            str(joint_dir / "cmc" / "summary.json"),
        )
        == 0
    )
    for stem in ("cross_q_parameters", "cross_q_rates"):
        for ext in ("png", "pdf", "rst"):
            assert (out / "cross_q" / f"{stem}.{ext}").stat().st_size > 0
    record = json.loads((out / "cross_q.json").read_text())
    assert record["joint_fit"]["parameters"]["D0_sample"]["value"] == TRUTH["D0_sample"]
    assert record["joint_fit"]["cmc"]["parameters"]["v0"] == {
        key: posterior["parameters"]["v0"][key] for key in ("mean", "sd", "q05", "q50", "q95")
    }
    assert "posterior's 5-95 % interval (flagged" in (out / "cross_q" / "cross_q_parameters.rst").read_text()
    caption = (out / "cross_q" / "cross_q_rates.rst").read_text()
    t_ref = record["rates"]["t_ref"]
    assert t_ref == pytest.approx(DT * np.mean(np.arange(2, N_TIMES + 2)))  # mean time of the maps
    assert f"t_ref = {t_ref:.4g} s" in caption and "mean time of the maps" in caption

    # J_sample(t_ref) per bin and its se, re-derived: gradient (t^a, D0 t^a ln t) over (D0, alpha) = 0 for
    # alpha_sample fixed -> se = t^a se(D0)
    a = TRUTH["alpha_sample"]
    k = FREE.index("D0_sample")
    j = theta[:, k] * t_ref**a
    se = np.sqrt(cov[:, k, k]) * t_ref**a
    j_mean = np.sum(j / se**2) / np.sum(1 / se**2)
    block = record["rates"]["decay_sample"]
    assert block["rate"] == pytest.approx(j, rel=1e-12) and block["rate_stderr"] == pytest.approx(se, rel=1e-9)
    assert block["values"] == pytest.approx(np.array(Q) ** 2 * j, rel=1e-12)
    assert block["mean"] == pytest.approx(j_mean, rel=1e-12)

    fig, lines = draw_rates(record)
    line = lines["decay_sample"]
    assert line["slope"] == 2
    np.testing.assert_allclose(line["y"], line["q"] ** 2 * j_mean, rtol=1e-12)  # through the weighted mean
    slope = np.diff(np.log(line["y"])) / np.diff(np.log(line["q"]))
    np.testing.assert_allclose(slope, 2.0, rtol=1e-9)
    drawn = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_gid() == "reference_decay_sample"]
    assert len(drawn) == 1 and np.array_equal(drawn[0].get_ydata(), line["y"])
    phase = lines["phase"]
    np.testing.assert_allclose(np.diff(np.log(phase["y"])) / np.diff(np.log(phase["q"])), 1.0, rtol=1e-9)
    assert "joint" in line  # the joint fit overlaid
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_undetermined_parameter_is_left_out_and_a_zero_phase_rate_is_not_drawn(tmp_path):
    rng = np.random.default_rng(17)
    free = ["D0_ref", "D0_sample", "v0"]
    values = dict(TRUTH, v0=0.0, v_offset=0.0)
    folders = []
    for k, qk in enumerate((0.005, 0.01)):
        cov = _covariance(rng, free)
        if k == 1:
            cov[2, :] = cov[:, 2] = np.nan  # v0 not determined by the fit at q = 0.01
        folders.append(write_bin(tmp_path / "results" / "U" / f"q{qk:g}", qk, values, free=free, cov=cov, cmc=False))
    out = tmp_path / "out"
    assert run_cross_q(folders, out) == 0
    record = json.loads((out / "cross_q.json").read_text())
    assert record["test"]["names"] == ["D0_ref", "D0_sample"]
    left = {e["name"]: e["reason"] for e in record["left_out"]}
    assert left["v0"] == "no finite estimate or standard error in the fit at q = 0.01 1/A"
    assert record["estimates"]["v0"]["nlsq"][1]["stderr"] is None
    assert record["rates"]["phase"]["values"] == [0.0, 0.0]
    assert record["rates"]["phase"]["stderr"][1] is None
    fig, lines = draw_rates(record)
    assert "phase" not in lines and "decay_sample" in lines
    import matplotlib.pyplot as plt

    plt.close(fig)
