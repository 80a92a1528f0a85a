"""A small saved result set in the workflow layout, for the figures and report tests.

A tiny two-angle dataset is simulated from known truth with ``compute_c2_heterodyne`` plus
Gaussian noise (sigma = 0.01). weights.json holds a noise model per angle: the first angle the
constant sigma with its spread per lag measured on the map, the second a speckle model (kappa
chosen so that its rms element sd is sigma, spread per lag predicted from it) as a fit of speckle
data would record it, with the NLSQ sandwich standard errors and a widened CMC posterior
(``noise_adjustment``) to match; nlsq.json/.h5, cmc/shard_k.h5, cmc/combined.h5 and
cmc/summary.json are written to the contract formats with plausible numbers: NLSQ at the truth
with se = 1 % of |value| (+0.01), CMC draws ~ N(truth, se) (so every number a test checks is
known here). Built once per test session (cached on the session's base temp folder) and shared by
tests/test_figures.py and tests/test_report.py.
"""

import functools
import json
from pathlib import Path

import cli_args
import h5py
import numpy as np
import yaml

from heterodyne.cmc.draws_file import save_combined
from heterodyne.cmc.summary_file import save_summary, summary_record
from heterodyne.core.jax_backend import compute_c2_heterodyne
from heterodyne.core.parameters import PARAMETER_NAMES, PARAMETERS, as_vector
from heterodyne.data.dataset import Dataset, count_usable, save_dataset
from heterodyne.fit.results import write_result_files
from heterodyne.fit.uncertainty import STDERR_SANDWICH
from heterodyne.noise_model import (
    DIAGONAL_STEPS,
    AngleNoise,
    difference_moment,
    element_variance,
    estimate_noise,
    lag_levels,
)
from heterodyne.provenance import provenance_record, write_provenance_attrs
from heterodyne.weighting.weights_file import AngleWeights, save_weights

NAME = "tiny"
N_TIMES = 32
DT = 0.1  # s
Q = 0.01  # 1/A
PHI = np.array([10.0, 70.0])
SIGMA = 0.01
CONTRAST = np.array([0.20, 0.25])
OFFSET = np.array([1.00, 1.01])
TRUTH = {
    "D0_ref": 5.0e3,
    "alpha_ref": 0.0,
    "D_offset_ref": 0.0,
    "D0_sample": 2.0e4,
    "alpha_sample": 0.3,
    "D_offset_sample": 0.0,
    "v0": 300.0,
    "beta": 0.0,
    "v_offset": 0.0,
    "f0": 0.4,
    "f1": 0.2,
    "f2": 0.0,
    "f3": 0.0,
    "phi0": 0.0,
}
FIXED = ("D_offset_ref", "D_offset_sample", "f2", "phi0")
AT_BOUND = ("f3",)
N_SHARDS, N_CHAINS, N_DRAWS = 2, 2, 150
FLAGGED_SHARD = 1
UNDETERMINED = "alpha_sample"  # listed as not determined by the data (posterior sd = 0.5 prior sd)
INVALID_PAIRS = ((0, 3, 9), (1, 5, 20))  # (angle, i, j): elements marked invalid (NaN in c2)
SPECKLE_ANGLE = 1  # the angle whose weights carry the speckle noise model
DIAGONAL_LEVEL = 0.4  # raw diagonal minus offset of the speckle model (c2 units)
NOISE_ADJUSTMENT = {"D0_ref": 1.21, "v0": 1.07}  # CMC sd factors recorded by cmc-combine
BENCHMARK_SECONDS = {"fit_nlsq": (12.5, 13.5), "ingest": (0.75,)}  # repeats per benchmark file


def stderr_of(name):
    """se used for free parameters: 1 % of |truth| + 0.01."""
    return 0.01 * abs(TRUTH[name]) + 0.01


def model_maps(values, q=Q):
    """(n_phi, N, N) model c2 at parameter dict ``values`` and ``q`` [1/A] with the true
    contrast/offset."""
    t = np.arange(N_TIMES) * DT
    return np.stack(
        [
            np.asarray(compute_c2_heterodyne(as_vector(values), t, q, DT, phi, c, o))
            for phi, c, o in zip(PHI, CONTRAST, OFFSET, strict=True)
        ]
    )


def reduced_chi2_per_angle(data, model, valid):
    """sum_{i<j, valid} ((data - model) / sigma)^2 / (number of such pairs), per angle."""
    upper = np.triu(np.ones((N_TIMES, N_TIMES), bool), k=1)
    out = []
    for a in range(len(PHI)):
        used = upper & valid[a]
        out.append(float(np.sum(((data[a] - model[a]) / SIGMA)[used] ** 2) / used.sum()))
    return out


def _write_draws(path, draws, provenance, **attrs):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        group = f.create_group("draws")
        for name, values in draws.items():
            group.create_dataset(name, data=values)
        f.attrs.update(attrs)
        write_provenance_attrs(f, provenance)


def _summary_entry(x):
    q05, q50, q95 = np.percentile(x, [5, 50, 95])
    return {
        "mean": float(np.mean(x)),
        "sd": float(np.std(x, ddof=1)),
        "q05": float(q05),
        "q50": float(q50),
        "q95": float(q95),
        "r_hat": 1.002,
        "ess_bulk": 250.0,
        "ess_tail": 300.0,
    }


# per-shard diagnostics as cmc-combine writes them: shard 0 passes, FLAGGED_SHARD fails every criterion
SHARD_DIAGNOSTICS = {
    0: {
        "divergences": 0,
        "max_r_hat": 1.003,
        "min_ess_bulk": 820.0,
        "min_ess_tail": 640.0,
        "tree_depth_mean": 3.2,
        "tree_depth_max": 4,
        "tree_depth_limit": 8,
        "frac_at_tree_depth_limit": 0.0,
        "step_size": [0.41, 0.39],
        "e_bfmi": [0.95, 1.02],
        "min_e_bfmi": 0.95,
        "flagged": False,
        "flag_reasons": [],
    },
    FLAGGED_SHARD: {
        "divergences": 7,
        "max_r_hat": 1.08,
        "min_ess_bulk": 80.0,
        "min_ess_tail": 60.0,
        "tree_depth_mean": 7.5,
        "tree_depth_max": 8,
        "tree_depth_limit": 8,
        "frac_at_tree_depth_limit": 0.25,
        "step_size": [0.021, 0.034],
        "e_bfmi": [0.21, 0.45],
        "min_e_bfmi": 0.21,
        "flagged": True,
        "flag_reasons": [
            "7 divergences",
            "75 draws at tree depth limit 8",
            "R-hat 1.0800 > 1.01 (v0)",
            "bulk ESS 80 < 400 (v0)",
            "tail ESS 60 < 400 (f0)",
            "E-BFMI 0.210 < 0.3 (chain 0)",
        ],
    },
}
# the combined posterior: every quantity has bulk ESS 250 and tail ESS 300 (_summary_entry)
COMBINED = {
    "max_r_hat": 1.002,
    "min_ess_bulk": 250.0,
    "min_ess_tail": 300.0,
    "flagged": True,
    "flag_reasons": ["bulk ESS 250 < 400 (D0_ref)", "tail ESS 300 < 400 (D0_ref)"],
}


def speckle_noise(c2, valid, offset):
    """Speckle :class:`AngleNoise` of one map (N, N): kernel L(k) = the map's lag levels, D_i =
    DIAGONAL_LEVEL, kappa such that the rms element sd over the valid pairs is SIGMA; ``lag_spread``
    measured on the map, ``lag_spread_model`` = sqrt(kappa E[d^2] / 6) averaged per lag."""
    n = c2.shape[-1]
    measured = estimate_noise(c2, valid, None, offset, SIGMA).lag_spread
    lag_level = lag_levels(c2, valid, offset)
    lag_level[0] = 0.0
    diagonal_level = np.full(n, DIAGONAL_LEVEL)
    rows, cols = np.triu_indices(n, 1)
    ok = valid[rows, cols]
    kappa = SIGMA**2 / np.mean(element_variance(diagonal_level, lag_level, rows[ok], cols[ok]))
    rows, cols = np.triu_indices(n - 2, 1)  # anchors of the diagonal second differences
    moment = kappa * difference_moment(DIAGONAL_STEPS, diagonal_level, lag_level, rows, cols)
    with np.errstate(invalid="ignore"):
        model = np.sqrt(np.bincount(cols - rows, moment, n) / np.bincount(cols - rows, None, n) / 6.0)
    return AngleNoise("speckle", SIGMA, float(kappa), diagonal_level, lag_level, measured, model)


@functools.cache
def build_saved_results(root, q=Q):
    """Write the whole result set, simulated at ``q`` [1/A], under ``root``; returns a dict of
    the paths and truths."""
    root = Path(root)
    rng = np.random.default_rng(20240611)
    results = root / "results" / NAME
    raw = root / "raw" / "tiny_results.hdf"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(rng.bytes(4096))
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump({"datasets": {NAME: {"file": str(raw)}}}))
    provenance = provenance_record({"test": "figures fixture"}, [raw])

    t = np.arange(N_TIMES) * DT
    clean = model_maps(TRUTH, q)
    noise = rng.normal(0.0, SIGMA, clean.shape)
    noise = np.triu(noise, 1) + np.transpose(np.triu(noise, 1), (0, 2, 1))
    data = clean + noise
    valid = np.ones(data.shape, bool)
    for a, i, j in INVALID_PAIRS:
        valid[a, i, j] = valid[a, j, i] = False
        data[a, i, j] = data[a, j, i] = np.nan
    dataset = Dataset(
        c2=data,
        valid=valid,
        t=t,
        phi=PHI,
        dt=DT,
        q=q,
        source_path=str(raw),
        source_sha256=provenance["input_sha256"][str(raw)],
        selection={"q_index": 0, "phi": PHI.tolist(), "frames": None},
    )
    save_dataset(results / "dataset.h5", dataset, provenance)
    # each file records the files it was made from, as the workflow's steps do
    noise = tuple(
        speckle_noise(data[a], valid[a], OFFSET[a])
        if a == SPECKLE_ANGLE
        else estimate_noise(data[a], valid[a], None, OFFSET[a], SIGMA)
        for a in range(len(PHI))
    )
    save_weights(
        results / "weights.json",
        AngleWeights(phi=PHI, sigma=np.full(2, SIGMA), contrast=CONTRAST, offset=OFFSET, method="robust", noise=noise),
        provenance_record({"test": "weights"}, [results / "dataset.h5"]),
    )
    fit_provenance = provenance_record({"test": "nlsq"}, [results / "dataset.h5", results / "weights.json"])

    chi2 = reduced_chi2_per_angle(data, clean, valid)
    free = [name for name in PARAMETER_NAMES if name not in FIXED]
    nlsq = {
        "converged": False,
        "termination": "maximum number of function evaluations reached",
        "parameters": {
            p.name: {
                "value": TRUTH[p.name],
                "stderr": None if p.name in FIXED else stderr_of(p.name),
                "fixed": p.name in FIXED,
                "at_bound": p.name in AT_BOUND,
                "unit": p.unit,
            }
            for p in PARAMETERS
        },
        "phi": PHI.tolist(),
        "contrast": CONTRAST.tolist(),
        "contrast_stderr": [0.002, 0.002],
        "offset": OFFSET.tolist(),
        "offset_stderr": [0.001, 0.001],
        "chi2": 1.0,
        "reduced_chi2": float(np.mean(chi2)),
        "reduced_chi2_per_angle": chi2,
        "dof": 900,
        "n_iterations": 40,
        "n_function_evals": 41,
        "wall_time_s": 3.5,
        "stderr_scaling": STDERR_SANDWICH,
        "correlation": {"names": free, "matrix": np.eye(len(free)).tolist()},
        "covariance": {
            "names": free,
            "matrix": np.diag([stderr_of(n) ** 2 for n in free]).tolist(),
            "independent": np.diag([stderr_of(n) ** 2 for n in free]).tolist(),
        },
        "provenance": fit_provenance,
    }

    def nlsq_arrays(f):
        f.create_dataset("c2_model", data=clean)
        f.create_dataset("covariance", data=np.asarray(nlsq["covariance"]["matrix"]))
        f["covariance"].attrs["names"] = json.dumps(free)
        f.create_dataset("values", data=as_vector(TRUTH))

    write_result_files(results / "nlsq.json", results / "nlsq.h5", nlsq, nlsq_arrays)
    shard_provenance = provenance_record(
        {"test": "cmc-shard"}, [results / "dataset.h5", results / "weights.json", results / "nlsq.json"]
    )

    spread = {name: (TRUTH[name], stderr_of(name)) for name in free}
    spread.update({f"contrast_{a}": (CONTRAST[a], 0.002) for a in range(2)})
    spread.update({f"offset_{a}": (OFFSET[a], 0.001) for a in range(2)})
    shards = []
    for k in range(N_SHARDS):
        draws = {name: rng.normal(mu, sd, (N_CHAINS, N_DRAWS)) for name, (mu, sd) in spread.items()}
        _write_draws(results / "cmc" / f"shard_{k}.h5", draws, shard_provenance, shard=k, seed=k)
        diagnostics = SHARD_DIAGNOSTICS[k]
        shards.append(
            {
                "shard": k,
                **diagnostics,
                "wall_time_s": 20.0 + k,
                "parameters": {
                    n: {
                        "mean": float(d.mean()),
                        "sd": float(d.std(ddof=1)),
                        "r_hat": diagnostics["max_r_hat"],
                        "ess_bulk": diagnostics["min_ess_bulk"],
                        "ess_tail": diagnostics["min_ess_tail"],
                    }
                    for n, d in draws.items()
                },
            }
        )
    combined = {name: rng.normal(mu, sd, N_CHAINS * N_DRAWS) for name, (mu, sd) in spread.items()}
    combine_provenance = provenance_record(
        {"test": "cmc-combine"}, [results / "cmc" / f"shard_{k}.h5" for k in range(N_SHARDS)]
    )
    save_combined(results / "cmc" / "combined.h5", combined, N_SHARDS, N_CHAINS, combine_provenance)
    posterior = {n: _summary_entry(d) for n, d in combined.items()}
    comparison = {
        n: {
            "nlsq_value": TRUTH[n],
            "nlsq_stderr": stderr_of(n),
            "cmc_mean": posterior[n]["mean"],
            "cmc_sd": posterior[n]["sd"],
            "shift_in_stderr": (posterior[n]["mean"] - TRUTH[n]) / stderr_of(n),
            "sd_in_stderr": posterior[n]["sd"] / stderr_of(n),
        }
        for n in free
    }
    sd = posterior[UNDETERMINED]["sd"]
    summary = summary_record(
        parameters=posterior,
        parametric={n: {"mean": float(d.mean()), "sd": float(d.std(ddof=1))} for n, d in combined.items()},
        combined=COMBINED,
        shards=shards,
        num_shards=N_SHARDS,
        n_points=count_usable(data, valid),
        nlsq_comparison=comparison,
        undetermined=[{"parameter": UNDETERMINED, "sd": sd, "prior_sd": 2 * sd, "sd_over_prior_sd": 0.5}],
        noise_adjustment=NOISE_ADJUSTMENT,
        limits={"r_hat": 1.01, "ess": 400, "e_bfmi": 0.3, "undetermined_sd_ratio": 0.3},
        n_chains=N_CHAINS,
        n_draws=N_CHAINS * N_DRAWS,
        provenance=combine_provenance,
    )
    assert summary["flagged_shards"] == [FLAGGED_SHARD]
    save_summary(results / "cmc" / "summary.json", summary)

    bench = results / "benchmarks"
    bench.mkdir()
    for step, repeats in BENCHMARK_SECONDS.items():
        lines = ["s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"]
        lines += [f"{s:.4f}\t0:00:{s:05.2f}\t100.0\t200.0\t90.0\t95.0\t0.0\t0.1\t50.0\t{s:.2f}" for s in repeats]
        (bench / f"{step}.tsv").write_text("\n".join(lines) + "\n")

    return {
        "root": root,
        "config": config_path,
        "results": results,
        "raw": raw,
        "data": data,
        "clean": clean,
        "valid": valid,
        "combined": combined,
        "summary": summary,
        "nlsq": nlsq,
        "provenance": provenance,
    }


def figure_args(saved, outdir):
    """Arguments of `heterodyne figures` for the saved set."""
    r = saved["results"]
    return [
        "figures",
        *cli_args.settings(saved["config"], "figures", dataset=NAME),
        "--name",
        NAME,
        "--data",
        str(r / "dataset.h5"),
        "--weights",
        str(r / "weights.json"),
        "--nlsq-json",
        str(r / "nlsq.json"),
        "--nlsq-h5",
        str(r / "nlsq.h5"),
        "--cmc-json",
        str(r / "cmc" / "summary.json"),
        "--cmc-h5",
        str(r / "cmc" / "combined.h5"),
        "--outdir",
        str(outdir),
    ]


@functools.cache
def build_figures(root):
    """Saved set plus `heterodyne figures` run into results/tiny/figures (exit status checked)."""
    from heterodyne.cli import main

    saved = build_saved_results(root)
    status = main(figure_args(saved, saved["results"] / "figures"))
    assert status == 0
    return saved
