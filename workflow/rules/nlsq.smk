# Joint multi-angle NLSQ fit -> results/{d}/nlsq.json (estimates, errors) and nlsq.h5 (model maps,
# covariance).


rule fit_nlsq:
    input:
        data="results/{dataset}/dataset.h5",
        weights="results/{dataset}/weights.json",
        code=package_code(*CODE_BASE, "fit", "cli/fit_nlsq.py"),
    output:
        json=report(
            "results/{dataset}/nlsq.json",
            caption="../report/nlsq.rst",
            category="Results",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "file": "nlsq.json"},
        ),
        h5="results/{dataset}/nlsq.h5",
    params:
        config_file=CONFIG_FILE,
        config=section("nlsq"),
    log:
        "logs/{dataset}/fit_nlsq.log",
    benchmark:
        "results/{dataset}/benchmarks/fit_nlsq.tsv"
    threads: 2
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne fit-nlsq --config {params.config_file:q}"
        " --dataset {wildcards.dataset:q} --data {input.data:q} --weights {input.weights:q}"
        " --output-json {output.json:q} --output-h5 {output.h5:q} > {log:q} 2>&1"
