"""README.md of the paper figures folder: every figure with its exact input files (path and
SHA-256), the settings that drove them and their SHA-256, versions and command line."""

import json
import shlex

#: one line per figure kind: what the figure shows
DESCRIPTIONS = {
    "maps": "Two-time maps c2(t1, t2); rows: angles; columns: data, NLSQ model, (data - model) / sigma "
    "(limit +/- {residual_limit:g}); data and model share one colour scale.",
    "cuts": "One-time cuts c2(t1, t1 + lag) against lag (log axis) at {cut_ages} ages, one panel per "
    "angle; points: data, lines: NLSQ model.",
    "physics": "J_ref(t), J_sample(t) (A^2/s), v(t) (A/s), x_s(t): NLSQ (line) with the 5-95 % band of "
    "{posterior_draws} combined CMC draws (shaded).",
    "cross_q": "Free parameters of one dataset against q (every analysed q bin): NLSQ +/- 1 se and CMC "
    "median with its 5-95 % interval; tested parameters with their inverse-variance weighted "
    "mean +/- 1 sd and (Holm-adjusted) p-values of the cross-q test.",
    "study": "Free physics parameters against each dataset's label (or the datasets in name order), one "
    "marker per q bin: NLSQ +/- 1 se (filled) and CMC median with its 5-95 % interval (open).",
}


def _where(plan, angles):
    if plan.kind in ("cross_q", "study"):
        names = list(dict.fromkeys(b.dataset for b in plan.bins))
        return f"datasets {', '.join(names)}, q bins {', '.join(f'{b.dataset}/{b.folder}' for b in plan.bins)}"
    (qres,) = plan.bins
    text = f"dataset {qres.dataset}, q bin {qres.folder} (q = {qres.q:g} 1/A)"
    return text + (f", phi = {', '.join(f'{p:g}' for p in angles)} deg" if angles is not None else "")


def figure_section(plan, record, size_in, figures, angles=None):
    """Markdown section of one written figure; ``record`` its provenance, ``size_in`` (w, h)."""
    lines = [
        f"## {plan.stem}.pdf",
        "",
        DESCRIPTIONS[plan.kind].format(**figures),
        f"From `{plan.entry}`: {_where(plan, angles)}. Size {size_in[0]:.2f} x {size_in[1]:.2f} in "
        f"({size_in[0] * 72:.1f} x {size_in[1] * 72:.1f} pt).",
        "",
        "| input file | SHA-256 |",
        "|---|---|",
    ]
    lines += [f"| `{path}` | `{digest}` |" for path, digest in record["input_sha256"].items()]
    return "\n".join(lines) + "\n"


def readme_text(settings, record, sections):
    """The whole README: header with settings and hash, one section per figure."""
    head = [
        "# Paper figures",
        "",
        f"Written by `heterodyne paper` (heterodyne {record['package_version']}, git commit "
        f"`{record['git_commit']}`) at {record['created_utc']}.",
        "",
        f"Command line: `{shlex.join(record['command_line'])}`",
        "",
        "Each PDF holds its config SHA-256, input files with SHA-256, package version and commit "
        "as compact JSON in its metadata (`Subject`).",
        "",
        f"Settings (config sections `{'`, `'.join(settings)}` as used, defaults filled), SHA-256 "
        f"(canonical JSON) `{record['config_sha256']}`:",
        "",
        "```json",
        json.dumps(settings, indent=2, sort_keys=True),
        "```",
        "",
        "Library versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()) + ".",
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(sections)
