# Per-angle noise sigma and initial contrast/offset -> results/{d}/weights.json.


rule weight:
    "Estimate each angle's noise model and initial contrast/offset -> weights.json."
    input:
        data="results/{dataset}/{qbin}/dataset.h5",
        code=package_code(*CODE_BASE, "weighting/estimate.py", "cli/weight.py"),
    output:
        report(
            "results/{dataset}/{qbin}/weights.json",
            caption="../report/weights.rst",
            category="Results",
            subcategory="{dataset} {qbin}",
            labels={"dataset": "{dataset}", "q": "{qbin}", "file": "weights.json"},
        ),
    log:
        "logs/{dataset}/{qbin}/weight.log",
    benchmark:
        "results/{dataset}/{qbin}/benchmarks/weight.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        settings=section("weight"),
    shell:
        "pin_cpus.sh {threads} heterodyne weight --settings {params.settings:q}"
        " --data {input.data:q} --output {output:q} > {log:q} 2>&1"
