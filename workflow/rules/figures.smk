# Figures of one q bin (PNG 200 dpi + PDF + an .rst caption each) -> results/{d}/{q}/figures/.
# They reach the Snakemake report inside the q bin's page (report.smk), not as items of their own.


rule figures:
    "Draw one q bin's figures (PNG, PDF, caption) from its saved results -> figures/."
    input:
        data="results/{dataset}/{qbin}/dataset.h5",
        weights="results/{dataset}/{qbin}/weights.json",
        nlsq_json="results/{dataset}/{qbin}/nlsq.json",
        nlsq_h5="results/{dataset}/{qbin}/nlsq.h5",
        cmc_json="results/{dataset}/{qbin}/cmc/summary.json",
        cmc_h5="results/{dataset}/{qbin}/cmc/combined.h5",
        # read beside combined.h5 for the per-shard trace and posterior figures
        shards=shard_files("results/{dataset}/{qbin}/cmc/shard_{shard}.h5"),
        code=package_code(*CODE_BASE, *RESULT_FILE_OWNERS, "plots", "cli/figures.py"),
    output:
        directory("results/{dataset}/{qbin}/figures"),
    log:
        "logs/{dataset}/{qbin}/figures.log",
    benchmark:
        "results/{dataset}/{qbin}/benchmarks/figures.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(15),
    params:
        settings=dataset_section("figures"),
    shell:
        "pin_cpus.sh {threads} heterodyne figures --settings {params.settings:q}"
        " --name {wildcards.dataset:q}/{wildcards.qbin:q}"
        " --data {input.data:q} --weights {input.weights:q}"
        " --nlsq-json {input.nlsq_json:q} --nlsq-h5 {input.nlsq_h5:q} --cmc-json {input.cmc_json:q}"
        " --cmc-h5 {input.cmc_h5:q} --outdir {output:q} > {log:q} 2>&1"
