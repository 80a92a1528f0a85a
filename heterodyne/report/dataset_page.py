"""The HTML report of one dataset.

Sections: warnings (also the packages whose versions differ from requirements.lock); parameter
table (NLSQ value +/- se, CMC mean, 90 % interval [q05, q95], R-hat, bulk and tail ESS, and for
free physics parameters (CMC mean - NLSQ value) / se and CMC sd / se), with how the NLSQ standard
errors were computed and, where cmc-combine widened the CMC posterior to the NLSQ sandwich
covariance, the sd factor per quantity; fit quality per angle (reduced chi2 = chi2_phi / dof_phi as
saved by fit-nlsq, noise model, noise sigma, contrast, offset); NLSQ and CMC run details (per
shard: divergences, max R-hat, min bulk and tail ESS, mean/max tree depth, % of draws at the tree
depth limit, step size per chain, min E-BFMI, flagged and why, wall time; the combined posterior's
R-hat and ESS; the pass criteria recorded by cmc-combine); figures; provenance (input file and
SHA-256, selection, config hash and config, per-step provenance, package versions, git commit, run
time per step). Given the dataset's cross_q.json record (``heterodyne report --cross-q``), a
"Cross-q consistency" section after the warnings shows its verdict and test table (the figures are
on the index page). Figures are embedded at screen resolution (:mod:`.screen_png`), each linking
its PDF in the figures folder by a path relative to the page.
"""

import json
import os
from pathlib import Path
from urllib.parse import quote

import yaml

import heterodyne
from heterodyne.core.parameters import PARAMETERS
from heterodyne.provenance import config_hash, git_commit, package_versions
from heterodyne.report.cross_q_section import cross_q_html
from heterodyne.report.findings import fit_warnings
from heterodyne.report.markup import esc, fmt, page, png_figure, table
from heterodyne.report.software_section import lock_warning_html


def _cmc_columns(entry):
    """CMC mean, 90 % interval, R-hat, bulk and tail ESS of one summary entry (None: not sampled)."""
    if entry is None:
        return ["not sampled", "-", "-", "-", "-"]
    return [
        fmt(entry["mean"]),
        f"[{fmt(entry['q05'])}, {fmt(entry['q95'])}]",
        fmt(entry["r_hat"], 4),
        fmt(entry["ess_bulk"], 4),
        fmt(entry["ess_tail"], 4),
    ]


def _comparison_columns(entry):
    """(CMC mean - NLSQ value) / se and CMC sd / se of an ``nlsq_comparison`` entry (None: "-")."""
    if entry is None:
        return ["-", "-"]
    return [fmt(entry["shift_in_stderr"], 3), fmt(entry["sd_in_stderr"], 3)]


def parameter_rows(nlsq, cmc):
    """Rows: the 14 physics parameters, then contrast_a and offset_a for every angle a."""
    rows = []
    for p in PARAMETERS:
        entry = nlsq["parameters"][p.name]
        estimate = (
            f"{fmt(entry['value'])} (fixed)" if entry["fixed"] else f"{fmt(entry['value'])} ± {fmt(entry['stderr'], 3)}"
        )
        rows.append(
            [
                p.name,
                p.unit,
                estimate,
                fmt(entry["at_bound"]),
                *_cmc_columns(cmc["parameters"].get(p.name)),
                *_comparison_columns(cmc["nlsq_comparison"].get(p.name)),
            ]
        )
    for kind in ("contrast", "offset"):
        for a, (value, se) in enumerate(zip(nlsq[kind], nlsq[f"{kind}_stderr"], strict=True)):
            name = f"{kind}_{a}"
            rows.append(
                [name, "1", f"{fmt(value)} ± {fmt(se, 3)}", "-", *_cmc_columns(cmc["parameters"].get(name)), "-", "-"]
            )
    return rows


def _section(title, anchor, content):
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{content}\n</section>'


def _warnings_html(found):
    if not found:
        return (
            '<p class="ok">No warnings: NLSQ converged, no parameter at a bound, no flagged shard, '
            "combined posterior not flagged, every sampled quantity determined by the data.</p>"
        )
    return "<ul>" + "".join(f'<li class="warn">{esc(w)}</li>' for w in found) + "</ul>"


def noise_model_text(weights, a):
    """Noise model of angle ``a``: "independent" (also for weights without noise models: one
    constant sigma per angle) or "speckle, kappa = ..." (kappa dimensionless)."""
    if weights.noise is None or weights.noise[a].model == "independent":
        return "independent"
    return f"speckle, kappa = {fmt(weights.noise[a].kappa, 3)}"


def uncertainty_text(nlsq, cmc):
    """One sentence: how the NLSQ standard errors were computed (nlsq.json ``stderr_scaling``) and
    whether the CMC posterior was widened to the NLSQ sandwich (summary.json ``noise_adjustment``,
    {quantity: sd factor}; absent in older files, read as null)."""
    factors = cmc.get("noise_adjustment")
    widened = (
        "the CMC posterior was widened to the NLSQ sandwich covariance (elements share frames), "
        "sd x " + ", ".join(f"{name} {fmt(f, 3)}" for name, f in factors.items())
        if factors
        else "the CMC posterior was not widened"
    )
    return f"NLSQ standard errors: {nlsq.get('stderr_scaling', 'not recorded')}; {widened}."


def _quality_html(results):
    nlsq, weights = results.nlsq, results.weights
    columns = zip(
        results.dataset.phi,
        nlsq["reduced_chi2_per_angle"],
        weights.sigma,
        nlsq["contrast"],
        nlsq["offset"],
        strict=True,
    )
    rows = [
        [fmt(phi), fmt(chi2, 5), noise_model_text(weights, a), fmt(sigma, 4), fmt(c, 5), fmt(o, 5)]
        for a, (phi, chi2, sigma, c, o) in enumerate(columns)
    ]
    return table(
        ["phi (deg)", "reduced chi2", "noise model", "sigma", "contrast (NLSQ)", "offset (NLSQ)"],
        rows,
        numeric=(0, 1, 3, 4, 5),
    )


def _runs_html(nlsq, cmc):
    keys = (
        "converged",
        "termination",
        "chi2",
        "reduced_chi2",
        "dof",
        "n_iterations",
        "n_function_evals",
        "wall_time_s",
        "stderr_scaling",
    )
    fit = table(["NLSQ", "value"], [[k, fmt(nlsq.get(k, "not recorded"))] for k in keys])
    shards = table(
        [
            "shard",
            "divergences",
            "max R-hat",
            "min bulk ESS",
            "min tail ESS",
            "tree depth mean / max",
            "% at depth limit",
            "step size per chain",
            "min E-BFMI",
            "flagged",
            "wall time (s)",
        ],
        [_shard_row(s) for s in cmc["shards"]],
        numeric=(0, 1, 2, 3, 4, 5, 6, 7, 8, 10),
    )
    combined = cmc["combined"]
    combined_table = table(
        ["combined posterior", "max R-hat", "min bulk ESS", "min tail ESS", "flagged"],
        [
            [
                "consensus draws",
                fmt(combined["max_r_hat"], 4),
                fmt(combined["min_ess_bulk"], 4),
                fmt(combined["min_ess_tail"], 4),
                _flag_text(combined),
            ]
        ],
        numeric=(1, 2, 3),
    )
    return f"{fit}\n<h3>CMC shards</h3>\n{_criteria_html(cmc['limits'])}\n{shards}\n{combined_table}"


def _criteria_html(limits):
    """The pass criteria cmc-combine applied (the ``limits`` it recorded in summary.json)."""
    text = (
        f"A shard passes with no divergence, no draw at the tree depth limit (2^depth - 1 leapfrog steps), "
        f"rank-normalised split R-hat <= {limits['r_hat']}, bulk and tail ESS >= {limits['ess']} and "
        f"E-BFMI >= {limits['e_bfmi']} in every chain; the combined posterior passes on the R-hat and "
        f"ESS criteria (Vehtari et al. 2021). A quantity whose combined posterior sd exceeds "
        f"{limits['undetermined_sd_ratio']} of its prior sd is listed as not determined by the data."
    )
    return f"<p>{esc(text)}</p>"


def _flag_text(entry):
    return "yes: " + "; ".join(entry["flag_reasons"]) if entry["flagged"] else "no"


def _shard_row(s):
    return [
        s["shard"],
        s["divergences"],
        fmt(s["max_r_hat"], 4),
        fmt(s["min_ess_bulk"], 4),
        fmt(s["min_ess_tail"], 4),
        f"{fmt(s['tree_depth_mean'], 3)} / {s['tree_depth_max']}",
        fmt(100 * s["frac_at_tree_depth_limit"], 3),
        ", ".join(fmt(h, 3) for h in s["step_size"]),
        fmt(s["min_e_bfmi"], 3),
        _flag_text(s),
        fmt(s["wall_time_s"], 4),
    ]


def _run_times_html(run_times):
    if not run_times:
        return "<p>Run time per step: not recorded (no benchmarks/*.tsv in the results folder).</p>"
    return table(
        ["step (benchmark file)", "wall time (s)"],
        [[step, fmt(seconds, 4)] for step, seconds in run_times.items()],
        numeric=(1,),
    )


def _provenance_html(results, config, report_provenance):
    ds = results.dataset
    source = table(
        ["item", "value"],
        [
            ["input file", ds.source_path],
            ["input SHA-256", ds.source_sha256],
            ["q (1/A)", fmt(ds.q)],
            ["dt (s)", fmt(ds.dt)],
            ["time origin (s)", fmt(ds.time_origin)],
            ["config SHA-256", config_hash(config)],
            ["package version (report)", heterodyne.__version__],
            ["git commit (report)", git_commit()],
        ],
    )
    selection = f"<h3>Selection</h3><pre>{esc(json.dumps(ds.selection, indent=2, sort_keys=True))}</pre>"
    config_text = f"<h3>Config</h3><pre>{esc(yaml.safe_dump(config, sort_keys=False))}</pre>"
    steps = table(
        ["step (file)", "config section SHA-256", "package version", "git commit", "created (UTC)"],
        [
            [step]
            + (
                [
                    record.get(k, "not recorded")
                    for k in ("config_sha256", "package_version", "git_commit", "created_utc")
                ]
                if record
                else ["not recorded"] * 4
            )
            for step, record in results.step_provenance.items()
        ],
    )
    recorded = run_versions(results)
    versions = table(
        ["package", *recorded],
        [[name, *(v.get(name, "not recorded") for v in recorded.values())] for name in recorded["report"]],
    )
    return "\n".join(
        [
            source,
            selection,
            config_text,
            "<h3>Steps</h3>",
            steps,
            "<h3>Versions</h3>",
            versions,
            "<h3>Run time per step</h3>",
            _run_times_html(results.run_times),
            "<h3>This report</h3>",
            _own_provenance_html(report_provenance),
        ]
    )


def run_versions(results):
    """{step: {package: version}} recorded in each step's provenance ({} where not recorded), then
    "report": the versions installed now (:func:`heterodyne.provenance.package_versions`)."""
    recorded = {step: (record or {}).get("versions", {}) for step, record in results.step_provenance.items()}
    return {**recorded, "report": package_versions()}


def _own_provenance_html(record):
    """The report's own provenance record (its config section is the Config shown above)."""
    shown = {key: value for key, value in record.items() if key != "config_section"}
    return f"<pre>{esc(json.dumps(shown, indent=1, sort_keys=True, default=str))}</pre>"


def relative_href(path, page_dir):
    """URL of the file ``path`` relative to the folder ``page_dir`` the page is written to."""
    return quote(Path(os.path.relpath(Path(path).resolve(), Path(page_dir).resolve())).as_posix())


def _figures_html(figures, page_dir):
    return "\n".join(png_figure(f.png, f.stem, f.caption, relative_href(f.pdf, page_dir)) for f in figures)


def render_dataset_page(name, results, config, provenance, page_dir, cross_q=None):
    """Complete HTML of the dataset report (str), to be written into the folder ``page_dir``;
    ``cross_q``: the dataset's cross_q.json record (dict) or None (no cross-q section)."""
    nlsq, cmc = results.nlsq, results.cmc
    found = [*results.dataset.selection.get("warnings", []), *fit_warnings(nlsq, cmc)]
    header = (
        f"<h1>heterodyne report: {esc(name)}</h1>\n<p>{len(results.dataset.phi)} angles, "
        f"N = {len(results.dataset.t)} times, q = {fmt(results.dataset.q)} 1/A; NLSQ reduced chi2 "
        f"{fmt(nlsq.get('reduced_chi2'), 5)}; {len(cmc['shards'])} CMC shard(s); "
        f"{len(found)} warning(s).</p>"
    )
    body = "\n".join(
        [
            header,
            _section("Warnings", "warnings", _warnings_html(found) + lock_warning_html(run_versions(results))),
            *(
                [_section("Cross-q consistency (all q bins of the dataset)", "cross-q", cross_q_html(cross_q))]
                if cross_q is not None
                else []
            ),
            _section(
                "Parameters",
                "parameters",
                table(
                    [
                        "parameter",
                        "unit",
                        "NLSQ value ± se",
                        "at bound",
                        "CMC mean",
                        "CMC 90 % interval",
                        "R-hat",
                        "ESS (bulk)",
                        "ESS (tail)",
                        "(CMC mean − NLSQ) / se",
                        "CMC sd / se",
                    ],
                    parameter_rows(nlsq, cmc),
                    numeric=(4, 6, 7, 8, 9, 10),
                )
                + f"<p>{esc(uncertainty_text(nlsq, cmc))}</p>",
            ),
            _section("Fit quality per angle", "quality", _quality_html(results)),
            _section("Fit runs", "runs", _runs_html(nlsq, cmc)),
            _section("Figures", "figures", _figures_html(results.figures, page_dir)),
            _section("Provenance", "provenance", _provenance_html(results, config, provenance)),
        ]
    )
    return page(f"heterodyne report: {name}", body, provenance)
