# The self-contained HTML report of each q bin (with its dataset's cross-q verdict), the study tables over all datasets and q bins
# (results/parameters.csv, results/fit_quality.csv; `heterodyne tables`), the audit of the whole
# results folder (results/audit.json, `heterodyne audit`), and results/index.html linking the
# reports and the tables and showing the audit. The report reads the benchmark files of the
# earlier steps for its "run time per step" table; both pages read requirements.lock to flag
# versions that differ from it.

STEP_BENCHMARKS = ["ingest", "weight", "fit_nlsq", "cmc_combine", "figures"]


rule report:
    "Write one q bin's self-contained HTML report with every number, figure and provenance -> report.html."
    input:
        data="results/{dataset}/{qbin}/dataset.h5",
        weights="results/{dataset}/{qbin}/weights.json",
        nlsq_json="results/{dataset}/{qbin}/nlsq.json",
        nlsq_h5="results/{dataset}/{qbin}/nlsq.h5",
        cmc_json="results/{dataset}/{qbin}/cmc/summary.json",
        cmc_h5="results/{dataset}/{qbin}/cmc/combined.h5",
        figures="results/{dataset}/{qbin}/figures",
        benchmarks=expand("results/{{dataset}}/{{qbin}}/benchmarks/{step}.tsv", step=STEP_BENCHMARKS),
        shard_benchmarks=shard_files("results/{dataset}/{qbin}/benchmarks/cmc_shard_{shard}.tsv"),
        # the dataset's cross-q verdict (all its q bins) is shown on each q bin's page
        cross_q="results/{dataset}/cross_q.json",
        code=package_code(
            *CODE_BASE,
            *RESULT_FILE_OWNERS,
            "report",
            "plots",
            "study",
            "audit.py",
            "software_lock.py",
            "cli/report.py",
        ),
        # the versions CI tested, which the page compares the run's with
        lock=LOCK_FILE,
    output:
        report(
            "results/{dataset}/{qbin}/report.html",
            caption="../report/dataset_report.rst",
            category="Dataset reports",
            labels={"dataset": "{dataset}", "q": "{qbin}"},
        ),
    log:
        "logs/{dataset}/{qbin}/report.log",
    benchmark:
        "results/{dataset}/{qbin}/benchmarks/report.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        results_dir=lambda wildcards: f"results/{wildcards.dataset}/{wildcards.qbin}",
        # the page shows the whole validated config, so any config change rewrites it
        settings=lambda wildcards: json.dumps({"config": config}, sort_keys=True),
    shell:
        "pin_cpus.sh {threads} heterodyne report --settings {params.settings:q}"
        " --name {wildcards.dataset:q}/{wildcards.qbin:q} --results-dir {params.results_dir:q}"
        " --cross-q {input.cross_q:q} --output {output:q} > {log:q} 2>&1"


# The audit runs after the study outputs (study.smk), so that it checks them too.
rule audit:
    "Check every result against the inputs its provenance records -> results/audit.json."
    input:
        reports=every_q("results/{dataset}/{qbin}/report.html"),
        tables=rules.study_tables.output,
        study=STUDY_FIGURE,
        cross_q=CROSS_Q,
        code=package_code(*CODE_BASE, "audit.py", "cli/audit.py"),
    output:
        "results/audit.json",
    log:
        "logs/audit.log",
    conda:
        CONDA_ENV
    threads: 1
    shell:
        "pin_cpus.sh {threads} heterodyne audit results --output {output:q} > {log:q} 2>&1"


rule report_index:
    "Write results/index.html: a row per dataset and q bin, links to the reports and tables, the audit."
    input:
        reports=every_q("results/{dataset}/{qbin}/report.html"),
        audit="results/audit.json",
        tables=rules.study_tables.output,
        study=STUDY_FIGURE,
        cross_q=CROSS_Q,
        code=package_code(
            *CODE_BASE,
            *RESULT_FILE_OWNERS,
            "report",
            "plots",
            "study",
            "audit.py",
            "software_lock.py",
            "cli/report.py",
        ),
        # the versions CI tested, which the page compares the run's with
        lock=LOCK_FILE,
    output:
        "results/index.html",
    log:
        "logs/report_index.log",
    benchmark:
        "logs/report_index.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: 1
    shell:
        "pin_cpus.sh {threads} heterodyne report --index --results-root results"
        " --audit {input.audit:q} --output {output:q} > {log:q} 2>&1"
