# Figures of one dataset (PNG 200 dpi + PDF + an .rst caption each) -> results/{d}/figures/.
# Every PNG is an item of the Snakemake report, captioned by workflow/report/figure.rst.


rule figures:
    input:
        data="results/{dataset}/dataset.h5",
        weights="results/{dataset}/weights.json",
        nlsq_json="results/{dataset}/nlsq.json",
        nlsq_h5="results/{dataset}/nlsq.h5",
        cmc_json="results/{dataset}/cmc/summary.json",
        cmc_h5="results/{dataset}/cmc/combined.h5",
        # read beside combined.h5 for the per-shard trace and posterior figures
        shards=shard_files("results/{dataset}/cmc/shard_{shard}.h5"),
        code=package_code(*CODE_BASE, "plots", "cli/figures.py"),
    output:
        report(
            directory("results/{dataset}/figures"),
            patterns=["{figure}.png"],
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "{figure}"},
        ),
    params:
        config_file=CONFIG_FILE,
        config=section("figures"),
    log:
        "logs/{dataset}/figures.log",
    benchmark:
        "results/{dataset}/benchmarks/figures.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne figures --config {params.config_file:q}"
        " --dataset {wildcards.dataset:q} --data {input.data:q} --weights {input.weights:q}"
        " --nlsq-json {input.nlsq_json:q} --nlsq-h5 {input.nlsq_h5:q} --cmc-json {input.cmc_json:q}"
        " --cmc-h5 {input.cmc_h5:q} --outdir {output:q} > {log:q} 2>&1"
