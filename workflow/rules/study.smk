# Across q bins and datasets: the tidy tables results/parameters.csv and results/fit_quality.csv
# (`heterodyne tables`); with several datasets the figure of each fitted parameter against the
# dataset (results/study/, `heterodyne study-figure`; x axis: the datasets' `label` when every
# dataset has one); per dataset the cross-q test (cross_q) and, with `joint_q: true`, the joint
# multi-q fit (fit_joint_q) and its posterior (cmc_joint_q); and the journal figures of
# `snakemake paper` (paper).

# the study figure, made when the config lists several datasets
STUDY_FIGURE = ["results/study"] if len(DATASETS) > 1 else []
# each dataset's cross-q summary and figures
CROSS_Q = expand(["results/{dataset}/cross_q.json", "results/{dataset}/cross_q"], dataset=DATASETS)


rule study_tables:
    "Gather every fitted number into the tidy tables results/parameters.csv and fit_quality.csv."
    input:
        data=every_q("results/{dataset}/{qbin}/dataset.h5"),
        weights=every_q("results/{dataset}/{qbin}/weights.json"),
        nlsq_json=every_q("results/{dataset}/{qbin}/nlsq.json"),
        cmc_json=every_q("results/{dataset}/{qbin}/cmc/summary.json"),
        code=package_code(
            *CODE_BASE,
            *RESULT_FILE_OWNERS,
            "report/__init__.py",
            "report/result_folder.py",
            "report/study_tables.py",
            "cli/tables.py",
        ),
    output:
        parameters="results/parameters.csv",
        fit_quality="results/fit_quality.csv",
    log:
        "logs/study_tables.log",
    benchmark:
        "logs/study_tables.benchmark.tsv"
    conda:
        CONDA_ENV
    threads: 1
    params:
        folders=every_q("results/{dataset}/{qbin}"),
    shell:
        "pin_cpus.sh {threads} heterodyne tables --folders {params.folders:q}"
        " --parameters {output.parameters:q} --fit-quality {output.fit_quality:q} > {log:q} 2>&1"


rule study_figure:
    "Draw each fitted parameter against the dataset, over several datasets -> results/study/."
    input:
        parameters="results/parameters.csv",
        code=package_code(
            *CODE_BASE,
            *RESULT_FILE_OWNERS,
            "plots",
            "report/__init__.py",
            "report/result_folder.py",
            "report/study_tables.py",
            "cli/study_figure.py",
        ),
    output:
        report(
            directory("results/study"),
            patterns=["{figure}.png"],
            caption="../report/study_figure.rst",
            category="Study",
            labels={"figure": "{figure}"},
        ),
    log:
        "logs/study_figure.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        settings=section("datasets"),
    shell:
        "pin_cpus.sh {threads} heterodyne study-figure --settings {params.settings:q}"
        " --parameters {input.parameters:q} --outdir {output:q} > {log:q} 2>&1"


# Per dataset: are the transport and velocity parameters the same at every q bin? Chi-square tests
# of the per-q NLSQ fits, with Holm's correction -> results/{d}/cross_q.json and the figures in
# results/{d}/cross_q/ (`heterodyne cross-q`); with `joint_q: true` the joint multi-q fit
# (fit_joint_q) and its posterior (cmc_joint_q) are drawn beside the per-q fits.
rule cross_q:
    "Test whether a dataset's transport and velocity parameters are the same at every q -> cross_q.json."
    input:
        data=every_q("results/{dataset}/{qbin}/dataset.h5"),
        nlsq=every_q("results/{dataset}/{qbin}/nlsq.json"),
        cmc=every_q("results/{dataset}/{qbin}/cmc/summary.json"),
        joint=joint_q_results,
        code=package_code(*CODE_BASE, *RESULT_FILE_OWNERS, "study", "plots", "cli/cross_q.py"),
    output:
        json="results/{dataset}/cross_q.json",
        figures=report(
            directory("results/{dataset}/cross_q"),
            patterns=["{figure}.png"],
            caption="../report/cross_q.rst",
            category="Cross-q",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "{figure}"},
        ),
    log:
        "logs/{dataset}/cross_q.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        folders=every_q("results/{dataset}/{qbin}"),
        joint=lambda wildcards, input: ["--joint", input.joint[0], "--joint-cmc", input.joint[1]] if input.joint else [],
    shell:
        "pin_cpus.sh {threads} heterodyne cross-q --folders {params.folders:q} {params.joint:q}"
        " --output-json {output.json:q} --outdir {output.figures:q} > {log:q} 2>&1"


# One NLSQ fit over all q bins of a dataset (`joint_q: true`): shared transport and velocity
# parameters, a sample fraction per q bin, contrast/offset per (q, phi) map.
rule fit_joint_q:
    "One NLSQ fit over all q bins of a dataset, shared physics, per-q fractions -> joint_q/nlsq.json."
    input:
        data=every_q("results/{dataset}/{qbin}/dataset.h5"),
        weights=every_q("results/{dataset}/{qbin}/weights.json"),
        code=package_code(*CODE_BASE, "fit", "cli/fit_run.py", "cli/fit_joint_q.py"),
    output:
        json="results/{dataset}/joint_q/nlsq.json",
        h5="results/{dataset}/joint_q/nlsq.h5",
    log:
        "logs/{dataset}/fit_joint_q.log",
    benchmark:
        "results/{dataset}/joint_q/benchmark.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=per_attempt(8000),
        runtime=per_attempt(60),
    params:
        settings=section("nlsq"),
    shell:
        "pin_cpus.sh {threads} heterodyne fit-joint-q --settings {params.settings:q}"
        " --data {input.data:q} --weights {input.weights:q}"
        " --output-json {output.json:q} --output-h5 {output.h5:q} > {log:q} 2>&1"


# The joint multi-q posterior (`joint_q: true`): the consensus of the per-q CMC posteriors over the
# joint fit's shared parameters, each bin's nuisance moved along its regression on them.
rule cmc_joint_q:
    "Joint multi-q posterior, the consensus of the per-q CMC posteriors -> joint_q/cmc/summary.json."
    input:
        joint="results/{dataset}/joint_q/nlsq.json",
        data=every_q("results/{dataset}/{qbin}/dataset.h5"),
        nlsq=every_q("results/{dataset}/{qbin}/nlsq.json"),
        cmc_json=every_q("results/{dataset}/{qbin}/cmc/summary.json"),
        cmc_h5=every_q("results/{dataset}/{qbin}/cmc/combined.h5"),
        code=package_code(*CODE_BASE, *RESULT_FILE_OWNERS, "cmc", "cli/cmc_joint_q.py"),
    output:
        json="results/{dataset}/joint_q/cmc/summary.json",
        h5="results/{dataset}/joint_q/cmc/combined.h5",
    log:
        "logs/{dataset}/cmc_joint_q.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        settings=section("cmc"),
        folders=every_q("results/{dataset}/{qbin}"),
    shell:
        "pin_cpus.sh {threads} heterodyne cmc-joint-q --settings {params.settings:q}"
        " --joint-nlsq {input.joint:q} --folders {params.folders:q}"
        " --output-json {output.json:q} --output-h5 {output.h5:q} > {log:q} 2>&1"


# `snakemake paper`: the journal figures (vector PDF, column widths) chosen by the `paper` section,
# with results/paper/README.md listing each figure's inputs and settings hash. Not part of `all`.
rule paper:
    "Journal figures (vector PDF) and their README from saved results -> results/paper/ (`snakemake paper`)."
    input:
        results=paper_inputs,
        code=package_code(*CODE_BASE, *RESULT_FILE_OWNERS, "plots", "report", "study", "cli/paper.py"),
    output:
        directory("results/paper"),
    log:
        "logs/paper.log",
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(15),
    params:
        settings=section(*PAPER_SECTIONS),
    shell:
        "pin_cpus.sh {threads} heterodyne paper --settings {params.settings:q}"
        " --results results --outdir {output:q} > {log:q} 2>&1"
