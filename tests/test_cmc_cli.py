"""`heterodyne cmc-shard` / `cmc-combine` end to end on a tiny simulated dataset: file contents,
provenance, reproducibility, K from cmc.points_per_shard, the comparison with NLSQ and the
undetermined quantities, and refusal of bad input without partial outputs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cli_args
import h5py
import numpy as np
import pytest
import yaml
from cmc_fixtures import PHI, SIGMA, nlsq_record, simulated_dataset

import heterodyne.cmc.compare as cmc_compare
import heterodyne.cmc.shards as cmc_shards
import heterodyne.cmc.steps as cmc_steps
from heterodyne.cli import main
from heterodyne.cmc.sampling import MAX_EXTENSIONS
from heterodyne.data.dataset import save_dataset
from heterodyne.provenance import provenance_record, read_provenance_attrs, write_provenance_attrs
from heterodyne.weighting.weights_file import AngleWeights, save_weights

CMC = {"num_shards": 2, "warmup": 60, "samples": 60, "chains": 2, "seed": 3, "sample_noise_scale": True}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmc")
    dataset = simulated_dataset()
    nlsq = nlsq_record(dataset)
    save_dataset(root / "dataset.h5", dataset, {"step": "test"})
    save_weights(
        root / "weights.json",
        AngleWeights(
            phi=PHI, sigma=SIGMA, contrast=np.array(nlsq["contrast"]), offset=np.array(nlsq["offset"]), method="robust"
        ),
        {"step": "test"},
    )
    (root / "nlsq.json").write_text(json.dumps(nlsq))
    (root / "config.yaml").write_text(yaml.safe_dump({"datasets": {"demo": {"file": "raw.h5"}}, "cmc": CMC}))
    return root


def write_config(root, name, cmc):
    """A config file ``name`` in ``root`` with the cmc section ``cmc``; its path."""
    (root / name).write_text(yaml.safe_dump({"datasets": {"demo": {"file": "raw.h5"}}, "cmc": cmc}))
    return root / name


def shard_argv(root, k, output, nlsq="nlsq.json", config="config.yaml"):
    return [
        "cmc-shard",
        *cli_args.settings(root / config, "cmc", "nlsq"),
        "--data",
        str(root / "dataset.h5"),
        "--weights",
        str(root / "weights.json"),
        "--nlsq",
        str(root / nlsq),
        "--shard",
        str(k),
        "--output",
        str(output),
    ]


def combine_argv(root, shards, config="config.yaml", outdir=None):
    outdir = root if outdir is None else outdir
    return [
        "cmc-combine",
        *cli_args.settings(root / config, "cmc", "nlsq"),
        "--data",
        str(root / "dataset.h5"),
        "--nlsq",
        str(root / "nlsq.json"),
        "--shards",
        *[str(s) for s in shards],
        "--output-json",
        str(outdir / "summary.json"),
        "--output-h5",
        str(outdir / "combined.h5"),
    ]


@pytest.fixture(scope="module")
def outputs(workdir):
    shards = [workdir / f"shard_{k}.h5" for k in range(CMC["num_shards"])]
    for k, path in enumerate(shards):
        assert main(shard_argv(workdir, k, path)) == 0
    assert main(shard_argv(workdir, 0, workdir / "shard_0_again.h5")) == 0
    assert main(combine_argv(workdir, shards)) == 0
    return shards


def test_shard_files_hold_draws_and_provenance(workdir, outputs):
    names = ["D0_sample", "v0", "f0", "contrast_0", "contrast_1", "offset_0", "offset_1", "noise_scale"]
    with h5py.File(outputs[1]) as f:
        assert sorted(f["draws"]) == sorted(names)
        chains, per_chain = f["draws/v0"].shape
        # extended by `samples` draws at a time (at most MAX_EXTENSIONS times) while ESS < ESS_MIN
        assert chains == CMC["chains"] and per_chain in CMC["samples"] * np.arange(1, MAX_EXTENSIONS + 2)
        assert f.attrs["shard"] == 1 and f.attrs["seed"] == CMC["seed"]
        n_points = f.attrs["n_points"]
        record = read_provenance_attrs(f)
    assert n_points == pytest.approx(len(PHI) * 64 * 63 / 2 / CMC["num_shards"], abs=len(PHI))
    assert record["config_section"]["cmc"]["num_shards"] == CMC["num_shards"]
    assert set(record["input_sha256"]) == {str(workdir / n) for n in ("dataset.h5", "weights.json", "nlsq.json")}


def test_same_seed_gives_the_same_draws(workdir, outputs):
    with (
        h5py.File(outputs[0]) as first,
        h5py.File(workdir / "shard_0_again.h5") as again,
        h5py.File(outputs[1]) as other,
    ):
        for name in first["draws"]:
            assert np.array_equal(first["draws"][name][()], again["draws"][name][()])
        assert not np.array_equal(first["draws/v0"][()], other["draws/v0"][()])


def test_summary_matches_the_combined_draws(workdir, outputs):
    summary = json.loads((workdir / "summary.json").read_text())
    with h5py.File(workdir / "combined.h5") as f:
        draws = {name: f["draws"][name][()] for name in f["draws"]}
        assert read_provenance_attrs(f)["input_sha256"].keys() == {
            str(workdir / "dataset.h5"),
            str(workdir / "nlsq.json"),
            *map(str, outputs),
        }
    per_chain = [entry["draws_per_chain"] for entry in summary["shards"]]
    assert len(draws["v0"]) == CMC["chains"] * min(per_chain)
    for name, x in draws.items():
        entry = summary["parameters"][name]
        assert entry["mean"] == pytest.approx(np.mean(x), rel=1e-12)
        assert entry["q95"] == pytest.approx(np.percentile(x, 95), rel=1e-12)
        assert summary["parametric"][name]["sd"] > 0
    # the data were simulated with exactly the weights' sigma: the noise scale is 1 within its sd
    noise = summary["parameters"]["noise_scale"]
    assert abs(noise["mean"] - 1.0) < 3 * noise["sd"] and noise["sd"] < 0.02
    assert summary["num_shards"] == 2 and [s["shard"] for s in summary["shards"]] == [0, 1]
    assert summary["flagged_shards"] == [s["shard"] for s in summary["shards"] if s["flagged"]]
    with h5py.File(outputs[0]) as f:
        v0 = f["draws/v0"][()]
        assert summary["shards"][0]["divergences"] == int(f["diverging"][()].sum())
        num_steps, step_size, depth_limit = f["num_steps"][()], f["step_size"][()], f.attrs["max_tree_depth"]
        assert f["energy"].shape == num_steps.shape == v0.shape == (CMC["chains"], per_chain[0])
    assert summary["shards"][0]["parameters"]["v0"]["mean"] == pytest.approx(v0.mean(), rel=1e-12)
    shard = summary["shards"][0]
    assert depth_limit == 10 == shard["tree_depth_limit"]  # the config default
    assert shard["tree_depth_max"] == int(np.ceil(np.log2(num_steps.max() + 1)))
    assert shard["frac_at_tree_depth_limit"] == np.mean(num_steps >= 2**10 - 1)
    assert shard["step_size"] == step_size.tolist() and len(step_size) == CMC["chains"]
    assert shard["flagged"] == bool(shard["flag_reasons"])
    # 2 chains x 60 draws, even extended 3 times, fall short of ESS 400: every shard and the combined
    # posterior are flagged
    assert summary["flagged_shards"] == [0, 1] and summary["combined"]["flagged"]
    assert summary["combined"]["min_ess_tail"] == min(e["ess_tail"] for e in summary["parameters"].values())
    assert summary["limits"] == {"r_hat": 1.01, "ess": 400, "e_bfmi": 0.3, "undetermined_sd_ratio": 0.3}
    assert "provenance" in summary


def test_summary_compares_the_consensus_with_the_nlsq_fit(workdir, outputs):
    """Per free physics parameter: NLSQ value and stderr as in nlsq.json, CMC mean and sd as in the
    summary, and their ratios. The NLSQ fit is the least-squares optimum of the same data and the
    prior is 10 stderr wide, so the posterior lies within a couple of stderr of it (measured: -0.8
    for D0_sample and f0, -0.1 for v0) with an sd near the NLSQ standard error (measured 0.93-0.98)."""
    summary = json.loads((workdir / "summary.json").read_text())
    nlsq = json.loads((workdir / "nlsq.json").read_text())
    comparison = summary["nlsq_comparison"]
    assert sorted(comparison) == ["D0_sample", "f0", "v0"]  # the free physics parameters only
    for name, row in comparison.items():
        value, stderr = nlsq["parameters"][name]["value"], nlsq["parameters"][name]["stderr"]
        mean, sd = summary["parameters"][name]["mean"], summary["parameters"][name]["sd"]
        assert (row["nlsq_value"], row["nlsq_stderr"], row["cmc_mean"], row["cmc_sd"]) == (value, stderr, mean, sd)
        assert row["shift_in_stderr"] == pytest.approx((mean - value) / stderr, rel=1e-12)
        assert row["sd_in_stderr"] == pytest.approx(sd / stderr, rel=1e-12)
        assert abs(row["shift_in_stderr"]) < 2.0, name
        assert 0.75 < row["sd_in_stderr"] < 1.33, name
    # posterior sd ~ stderr, prior sd 10 stderr: every quantity is determined by the data
    assert summary["undetermined"] == []
    assert summary["n_points"] == len(PHI) * 64 * 63 // 2


def test_combine_lists_a_quantity_the_data_leave_to_its_prior(workdir, outputs, caplog, monkeypatch):
    """With the undetermined limit lowered to 0.05, v0 (posterior sd ~0.1 of its default prior sd,
    10 NLSQ standard errors) is listed in summary.json with sd / prior sd, and logged."""
    monkeypatch.setattr(cmc_compare, "UNDETERMINED_SD_RATIO", 0.05)
    monkeypatch.setattr(cmc_steps, "UNDETERMINED_SD_RATIO", 0.05)
    outdir = workdir / "low_limit"
    outdir.mkdir()
    assert main(combine_argv(workdir, outputs, outdir=outdir)) == 0
    summary = json.loads((outdir / "summary.json").read_text())
    nlsq = json.loads((workdir / "nlsq.json").read_text())
    prior_sd = 10.0 * nlsq["parameters"]["v0"]["stderr"]
    listed = {entry["parameter"]: entry for entry in summary["undetermined"]}
    sd = summary["parameters"]["v0"]["sd"]
    assert listed["v0"] == {
        "parameter": "v0",
        "sd": sd,
        "prior_sd": pytest.approx(prior_sd, rel=1e-12),
        "sd_over_prior_sd": pytest.approx(sd / prior_sd, rel=1e-12),
    }
    assert all(entry["sd_over_prior_sd"] > 0.05 for entry in listed.values())
    assert summary["limits"]["undetermined_sd_ratio"] == 0.05
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert (
        f"v0 not determined by the data: posterior sd {sd:.4g} is {sd / prior_sd:.2f} of its prior sd "
        f"{prior_sd:.4g} (> 0.05)"
    ) in warnings


def test_combine_refuses_shards_sampled_under_another_prior(workdir, outputs, capsys):
    """A narrower normal prior of v0 (config changed after the shards ran) leaves the coordinates
    as they were but not the prior the shards were sampled under: refused, nothing written."""
    write_config(
        workdir,
        "config_tight_v0.yaml",
        {**CMC, "prior": {"parameters": {"v0": {"kind": "truncated-normal", "width": 2.0}}}},
    )
    outdir = workdir / "tight_v0"
    assert main(combine_argv(workdir, outputs, config="config_tight_v0.yaml", outdir=outdir)) == 2
    err = capsys.readouterr().err
    assert f": sampled in other prior ('sd' differs) than {workdir / 'nlsq.json'}" in err
    assert not (outdir / "summary.json").exists() and not (outdir / "combined.h5").exists()


def test_points_per_shard_sets_k_the_prior_power_and_the_shard_sizes(workdir, monkeypatch):
    """4032 usable points (2 angles x 64 * 63 / 2) at 1500 per shard: K = ceil(2.688) = 3, so
    every shard holds 2016 / 3 = 672 points per angle (1344 in all) and its prior power is 1/3.
    The sampler is replaced by a stub that records what cmc-shard hands it."""
    config = write_config(
        workdir, "config_pps.yaml", {**{k: v for k, v in CMC.items() if k != "num_shards"}, "points_per_shard": 1500}
    )

    class Captured(Exception):
        pass

    def capture(data, spec, info, settings, seed, shard, progress_bar):
        raise Captured(data, shard)

    monkeypatch.setattr(cmc_shards, "run_shard", capture)
    for k in range(3):
        with pytest.raises(Captured) as caught:
            main(shard_argv(workdir, k, workdir / "pps_shard.h5", config=config.name))
        data, shard = caught.value.args
        assert shard == k and data.prior_power == pytest.approx(1 / 3, rel=1e-15)
        assert int(np.sum(data.mask)) == len(data.mask) == 1344
        assert np.bincount(data.phi_index[data.mask], minlength=2).tolist() == [672, 672]
    assert not (workdir / "pps_shard.h5").exists()


def test_shard_index_beyond_k_from_points_per_shard_exits_2(workdir, capsys):
    config = write_config(
        workdir, "config_pps.yaml", {**{k: v for k, v in CMC.items() if k != "num_shards"}, "points_per_shard": 1500}
    )
    assert main(shard_argv(workdir, 3, workdir / "shard_3.h5", config=config.name)) == 2
    err = capsys.readouterr().err
    assert "--shard 3: must lie in [0, 2] (K = 3 from cmc.points_per_shard = 1500 and 4032 usable points)" in err
    assert not (workdir / "shard_3.h5").exists()


def test_combine_expects_the_k_of_points_per_shard(workdir, outputs, capsys):
    """The shards were written with K = 2; a config with points_per_shard 1500 gives K = 3."""
    config = write_config(
        workdir, "config_pps.yaml", {**{k: v for k, v in CMC.items() if k != "num_shards"}, "points_per_shard": 1500}
    )
    outdir = workdir / "pps_combine"
    assert main(combine_argv(workdir, outputs, config=config.name, outdir=outdir)) == 2
    err = capsys.readouterr().err
    assert (
        f"{outputs[0]}: written with K=2 shards, seed=3 but the config gives K=3, cmc.seed=3 "
        "(cmc.points_per_shard = 1500 and 4032 usable points)"
    ) in err
    assert not (outdir / "summary.json").exists() and not (outdir / "combined.h5").exists()


def test_combine_refuses_shards_sampled_in_other_coordinates_than_the_config_gives(workdir, outputs, capsys):
    """A uniform prior of v0 (config changed after the shards ran) narrows its support, so v0's
    coordinate kind (bounded on both sides now) differs from the one the shards sampled in."""
    config = workdir / "config_prior.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "datasets": {"demo": {"file": "raw.h5"}},
                "cmc": {**CMC, "prior": {"parameters": {"v0": {"kind": "uniform", "width": 3.0}}}},
            }
        )
    )
    outdir = workdir / "prior_combine"
    assert main(combine_argv(workdir, outputs, config=config.name, outdir=outdir)) == 2
    err = capsys.readouterr().err
    assert f"{outputs[0]}: sampled in other coordinates ('kind' differs) than {workdir / 'nlsq.json'}" in err
    assert not (outdir / "summary.json").exists() and not (outdir / "combined.h5").exists()


def test_combine_logs_each_flagged_shard_with_its_reasons(workdir, outputs, caplog):
    argv = combine_argv(workdir, outputs)
    argv[argv.index("--output-json") + 1] = str(workdir / "again" / "summary.json")
    argv[argv.index("--output-h5") + 1] = str(workdir / "again" / "combined.h5")
    assert main(argv) == 0
    summary = json.loads((workdir / "again" / "summary.json").read_text())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    expected = [f"shard {s['shard']} flagged: {'; '.join(s['flag_reasons'])}" for s in summary["shards"]]
    assert warnings == expected + [f"combined posterior flagged: {'; '.join(summary['combined']['flag_reasons'])}"]
    assert any(reason.startswith("bulk ESS ") for reason in summary["shards"][0]["flag_reasons"])


def test_shard_index_out_of_range_exits_2_without_output(workdir, capsys):
    assert main(shard_argv(workdir, 2, workdir / "shard_2.h5")) == 2
    assert "--shard 2: must lie in [0, 1]" in capsys.readouterr().err
    assert not (workdir / "shard_2.h5").exists()


def test_nlsq_of_other_angles_exits_2(workdir, capsys):
    nlsq = json.loads((workdir / "nlsq.json").read_text())
    nlsq["phi"] = [10.0, 80.0]
    (workdir / "nlsq_other.json").write_text(json.dumps(nlsq))
    assert main(shard_argv(workdir, 0, workdir / "bad.h5", nlsq="nlsq_other.json")) == 2
    assert "does not match the dataset's angles" in capsys.readouterr().err
    assert not (workdir / "bad.h5").exists()


def test_combine_with_a_missing_shard_exits_2_without_output(workdir, outputs, capsys):
    target = workdir / "partial"
    argv = combine_argv(workdir, outputs[:1])
    argv[argv.index("--output-json") + 1] = str(target / "summary.json")
    argv[argv.index("--output-h5") + 1] = str(target / "combined.h5")
    assert main(argv) == 2
    assert "need each of 0..1 once" in capsys.readouterr().err
    assert not (target / "summary.json").exists() and not (target / "combined.h5").exists()


def test_combine_rejects_a_shard_whose_chains_did_not_move(workdir, outputs, capsys):
    """A shard whose draws of one quantity are constant has no covariance to combine: exit 2 with
    a message naming the file and the quantity, not NaN draws."""
    stuck = workdir / "stuck" / "shard_1.h5"
    stuck.parent.mkdir()
    shutil.copy(outputs[1], stuck)
    with h5py.File(stuck, "r+") as f:
        f["draws/v0"][...] = f["draws/v0"][0, 0]
    argv = combine_argv(workdir, [outputs[0], stuck])
    argv[argv.index("--output-json") + 1] = str(stuck.parent / "summary.json")
    argv[argv.index("--output-h5") + 1] = str(stuck.parent / "combined.h5")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert str(stuck) in err and "draws of v0 are constant" in err
    assert not (stuck.parent / "summary.json").exists() and not (stuck.parent / "combined.h5").exists()


def _other_dataset_files(workdir):
    """dataset.h5 and weights.json of 'another dataset' (other bytes) in workdir/other."""
    other = workdir / "other"
    other.mkdir(exist_ok=True)
    for name in ("dataset.h5", "weights.json"):
        (other / name).write_bytes((workdir / name).read_bytes() + b"another dataset")
    return [other / "dataset.h5", other / "weights.json"]


def test_nlsq_of_another_dataset_exits_2_naming_both_files(workdir, capsys):
    nlsq = json.loads((workdir / "nlsq.json").read_text())
    nlsq["provenance"] = provenance_record({}, _other_dataset_files(workdir))
    (workdir / "nlsq_foreign.json").write_text(json.dumps(nlsq))
    assert main(shard_argv(workdir, 0, workdir / "foreign.h5", nlsq="nlsq_foreign.json")) == 2
    err = capsys.readouterr().err
    assert (
        f"{workdir / 'nlsq_foreign.json'}: made from a different {workdir / 'other' / 'dataset.h5'}, "
        f"not from {workdir / 'dataset.h5'}"
    ) in err
    assert not (workdir / "foreign.h5").exists()


def test_combine_refuses_shards_of_different_inputs(workdir, outputs, capsys):
    foreign = workdir / "foreign" / "shard_1.h5"
    foreign.parent.mkdir()
    shutil.copy(outputs[1], foreign)
    with h5py.File(foreign, "r+") as f:
        record = read_provenance_attrs(f)
        record["input_sha256"] = provenance_record({}, _other_dataset_files(workdir))["input_sha256"]
        write_provenance_attrs(f, record)
    argv = combine_argv(workdir, [outputs[0], foreign])
    argv[argv.index("--output-json") + 1] = str(foreign.parent / "summary.json")
    argv[argv.index("--output-h5") + 1] = str(foreign.parent / "combined.h5")
    assert main(argv) == 2
    assert f"{foreign}: made from other inputs (SHA-256) than {outputs[0]}" in capsys.readouterr().err
    assert not (foreign.parent / "summary.json").exists() and not (foreign.parent / "combined.h5").exists()


@pytest.mark.skipif(
    shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2, reason="needs taskset and two usable CPUs"
)
def test_draws_do_not_depend_on_the_number_of_cpus(workdir, outputs):
    """A shard run by the `heterodyne` command on one CPU gives bit-identical draws to the same
    shard run by the fixture in this process with two CPUs (one chain method and one XLA thread
    whatever the CPU count)."""
    heterodyne = str(Path(sys.executable).with_name("heterodyne"))
    output = workdir / "shard_one_cpu.h5"
    subprocess.run(["taskset", "-c", "0", heterodyne, *shard_argv(workdir, 1, output)], check=True, capture_output=True)
    with h5py.File(output) as one, h5py.File(outputs[1]) as two:
        assert one.attrs["chain_method"] == two.attrs["chain_method"] == "vectorized"
        assert set(one["draws"]) == set(two["draws"])
        for name in one["draws"]:
            assert np.array_equal(one["draws"][name][()], two["draws"][name][()]), name
