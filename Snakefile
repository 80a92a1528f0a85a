"""heterodyne-workflow: two-component heterodyne XPCS analysis of APS 8-ID-I two-time maps.

One job chain per dataset (wildcard ``dataset``, one entry under ``datasets`` in the config):
[simulate] -> ingest -> weight -> fit_nlsq -> cmc_shard (K jobs) -> cmc_combine -> figures ->
report, plus over all datasets the study tables results/parameters.csv and fit_quality.csv, the
audit and results/index.html. Every rule runs one ``heterodyne`` command;
this file only wires paths. See workflow/README.md. Local defaults live in the workflow
profile workflow/profiles/default (`make run` passes it with --workflow-profile).
"""

from snakemake.utils import min_version, validate

min_version("9.0")


# config/config.yaml, unless another file is given with --configfile (it then replaces it).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# Every heterodyne command re-reads the config file, so the settings must all be in one file.
if len(workflow.configfiles) != 1 or workflow.config_settings.config:
    raise WorkflowError(
        "heterodyne-workflow reads its settings from one config file, and every step re-reads "
        "that file: give a single --configfile (or none, for config/config.yaml) and put the "
        "changes you passed with --config into that file."
    )


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


wildcard_constraints:
    dataset=r"[^/]+",
    shard=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/weight.smk"
include: "workflow/rules/nlsq.smk"
include: "workflow/rules/cmc.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/{dataset}/report.html", dataset=DATASETS),
        "results/parameters.csv",
        "results/fit_quality.csv",
        "results/index.html",
    default_target: True
