"""heterodyne-workflow: two-component heterodyne XPCS analysis of APS 8-ID-I two-time maps.

Per dataset (wildcard ``dataset``, one entry under ``datasets`` in the config): [simulate] ->
q_bins, then one job chain per q bin (wildcard ``qbin``, e.g. q0.01): ingest -> weight ->
fit_nlsq -> cmc_shard (K jobs) -> cmc_combine -> figures -> report, in results/{dataset}/{qbin}/;
over all datasets the study tables results/parameters.csv and fit_quality.csv, the audit and
results/index.html. Every rule runs one ``heterodyne`` command with the config sections it
reads (``--settings``); this file only wires paths. See workflow/README.md. Local defaults live in
the workflow profile profiles/default (found by Snakemake beside this file); SLURM runs use
``--workflow-profile slurm`` (profiles/slurm).
"""

from snakemake.utils import min_version, validate

min_version("9.0")


# config/config.yaml, unless another file is given with --configfile (it then replaces it).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# Checked as given; the jobs receive their sections as written and fill the schema's defaults
# themselves (common.smk keeps a defaulted copy for the decisions made here).
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)


report: "workflow/report/workflow.rst"


wildcard_constraints:
    dataset=r"[^/]+",
    qbin=r"q[0-9][0-9.e+-]*",
    shard=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/weight.smk"
include: "workflow/rules/nlsq.smk"
include: "workflow/rules/cmc.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/study.smk"
include: "workflow/rules/report.smk"


# Steps that take seconds and read many files run where Snakemake runs, not as cluster jobs.
localrules:
    all,
    q_bins,
    study_tables,
    report_index,
    audit,


rule all:
    "Default target: every q bin's report, the study tables and results/index.html."
    default_target: True
    input:
        every_q("results/{dataset}/{qbin}/report.html"),
        "results/parameters.csv",
        "results/fit_quality.csv",
        "results/index.html",
