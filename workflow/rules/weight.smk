# Per-angle noise sigma and initial contrast/offset -> results/{d}/weights.json.


rule weight:
    input:
        data="results/{dataset}/dataset.h5",
        code=package_code(*CODE_BASE, "weighting.py", "cli/weight.py"),
    output:
        report(
            "results/{dataset}/weights.json",
            caption="../report/weights.rst",
            category="Results",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "file": "weights.json"},
        ),
    params:
        config_file=CONFIG_FILE,
        config=section("weight"),
    log:
        "logs/{dataset}/weight.log",
    benchmark:
        "results/{dataset}/benchmarks/weight.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne weight --config {params.config_file:q}"
        " --dataset {wildcards.dataset:q} --data {input.data:q} --output {output:q} > {log:q} 2>&1"
