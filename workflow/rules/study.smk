# Over the whole study (every dataset and q bin): the tidy tables results/parameters.csv and
# results/fit_quality.csv (`heterodyne tables`), and with several datasets the figure of each fitted
# parameter against the dataset (results/study/, `heterodyne study-figure`; x axis: the datasets'
# `label` when every dataset has one).

# the study figure, made when the config lists several datasets
STUDY_FIGURE = ["results/study"] if len(DATASETS) > 1 else []


rule study_tables:
    input:
        data=every_q("results/{dataset}/{qbin}/dataset.h5"),
        weights=every_q("results/{dataset}/{qbin}/weights.json"),
        nlsq_json=every_q("results/{dataset}/{qbin}/nlsq.json"),
        cmc_json=every_q("results/{dataset}/{qbin}/cmc/summary.json"),
        code=package_code(*CODE_BASE, "report/__init__.py", "report/study_tables.py", "cli/tables.py"),
    output:
        parameters="results/parameters.csv",
        fit_quality="results/fit_quality.csv",
    params:
        folders=every_q("results/{dataset}/{qbin}"),
    log:
        "logs/study_tables.log",
    benchmark:
        "logs/study_tables.benchmark.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne tables --folders {params.folders:q}"
        " --parameters {output.parameters:q} --fit-quality {output.fit_quality:q} > {log:q} 2>&1"


rule study_figure:
    input:
        parameters="results/parameters.csv",
        code=package_code(*CODE_BASE, "plots", "report/__init__.py", "report/study_tables.py",
                          "cli/study_figure.py"),
    output:
        report(
            directory("results/study"),
            patterns=["{figure}.png"],
            caption="../report/study_figure.rst",
            category="Study",
            labels={"figure": "{figure}"},
        ),
    params:
        settings=section("datasets"),
    log:
        "logs/study_figure.log",
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne study-figure --settings {params.settings:q}"
        " --parameters {input.parameters:q} --outdir {output:q} > {log:q} 2>&1"
