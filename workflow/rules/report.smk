# The self-contained HTML report of each dataset, the study tables over all datasets
# (results/parameters.csv, results/fit_quality.csv; `heterodyne tables`), the audit of the whole
# results folder (results/audit.json, `heterodyne audit`), and results/index.html linking the
# reports and the tables and showing the audit. The report reads the benchmark files of the earlier steps for its "run time per step" table.

STEP_BENCHMARKS = ["ingest", "weight", "fit_nlsq", "cmc_combine", "figures"]


rule report:
    input:
        data="results/{dataset}/dataset.h5",
        weights="results/{dataset}/weights.json",
        nlsq_json="results/{dataset}/nlsq.json",
        nlsq_h5="results/{dataset}/nlsq.h5",
        cmc_json="results/{dataset}/cmc/summary.json",
        cmc_h5="results/{dataset}/cmc/combined.h5",
        figures="results/{dataset}/figures",
        benchmarks=expand("results/{{dataset}}/benchmarks/{step}.tsv", step=STEP_BENCHMARKS),
        shard_benchmarks=shard_files("results/{dataset}/benchmarks/cmc_shard_{shard}.tsv"),
        code=package_code(*CODE_BASE, "report", "plots", "cli/report.py"),
    output:
        report(
            "results/{dataset}/report.html",
            caption="../report/dataset_report.rst",
            category="Dataset reports",
            labels={"dataset": "{dataset}"},
        ),
    params:
        config_file=CONFIG_FILE,
        results_dir=lambda wildcards: f"results/{wildcards.dataset}",
        # the page shows the whole validated config, so any config change rewrites it
        config=section(*config),
    log:
        "logs/{dataset}/report.log",
    benchmark:
        "results/{dataset}/benchmarks/report.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne report --config {params.config_file:q}"
        " --dataset {wildcards.dataset:q} --results-dir {params.results_dir:q}"
        " --output {output:q} > {log:q} 2>&1"


rule study_tables:
    input:
        data=expand("results/{dataset}/dataset.h5", dataset=DATASETS),
        weights=expand("results/{dataset}/weights.json", dataset=DATASETS),
        nlsq_json=expand("results/{dataset}/nlsq.json", dataset=DATASETS),
        cmc_json=expand("results/{dataset}/cmc/summary.json", dataset=DATASETS),
        code=package_code(*CODE_BASE, "report/__init__.py", "report/study_tables.py", "cli/tables.py"),
    output:
        parameters="results/parameters.csv",
        fit_quality="results/fit_quality.csv",
    params:
        datasets=DATASETS,
    log:
        "logs/study_tables.log",
    benchmark:
        "logs/study_tables.benchmark.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne tables --results-root results --datasets {params.datasets:q}"
        " --parameters {output.parameters:q} --fit-quality {output.fit_quality:q} > {log:q} 2>&1"


# The audit runs after the tables, so that it checks them too.
rule audit:
    input:
        reports=expand("results/{dataset}/report.html", dataset=DATASETS),
        tables=rules.study_tables.output,
        code=package_code(*CODE_BASE, "audit.py", "cli/audit.py"),
    output:
        "results/audit.json",
    log:
        "logs/audit.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne audit results --output {output:q} > {log:q} 2>&1"


rule report_index:
    input:
        reports=expand("results/{dataset}/report.html", dataset=DATASETS),
        audit="results/audit.json",
        tables=rules.study_tables.output,
        code=package_code(*CODE_BASE, "report", "plots", "cli/report.py"),
    output:
        "results/index.html",
    log:
        "logs/report_index.log",
    benchmark:
        "logs/report_index.benchmark.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne report --index --results-root results"
        " --audit {input.audit:q} --output {output:q} > {log:q} 2>&1"
