# Joint multi-angle NLSQ fit -> results/{d}/nlsq.json (estimates, errors) and nlsq.h5 (model maps,
# covariance).


rule fit_nlsq:
    "Joint multi-angle NLSQ fit of one q bin -> nlsq.json (estimates, errors), nlsq.h5 (model maps)."
    input:
        data="results/{dataset}/{qbin}/dataset.h5",
        weights="results/{dataset}/{qbin}/weights.json",
        code=package_code(*CODE_BASE, "fit", "cli/fit_run.py", "cli/fit_nlsq.py"),
    output:
        json=report(
            "results/{dataset}/{qbin}/nlsq.json",
            caption="../report/nlsq.rst",
            category="Results",
            subcategory="{dataset} {qbin}",
            labels={"dataset": "{dataset}", "q": "{qbin}", "file": "nlsq.json"},
        ),
        h5="results/{dataset}/{qbin}/nlsq.h5",
    log:
        "logs/{dataset}/{qbin}/fit_nlsq.log",
    benchmark:
        "results/{dataset}/{qbin}/benchmarks/fit_nlsq.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    params:
        settings=section("nlsq"),
    shell:
        "pin_cpus.sh {threads} heterodyne fit-nlsq --settings {params.settings:q}"
        " --data {input.data:q} --weights {input.weights:q}"
        " --output-json {output.json:q} --output-h5 {output.h5:q} > {log:q} 2>&1"
