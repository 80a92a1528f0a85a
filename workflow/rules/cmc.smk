# Consensus Monte Carlo: NUTS on each of K shards (one job each), then the consensus
# combination -> results/{d}/cmc/summary.json and combined.h5. K: shard_indices (common.smk).


rule cmc_shard:
    input:
        data="results/{dataset}/dataset.h5",
        weights="results/{dataset}/weights.json",
        nlsq="results/{dataset}/nlsq.json",
        code=package_code(*CODE_BASE, "cmc", "cli/cmc_shard.py"),
    output:
        "results/{dataset}/cmc/shard_{shard}.h5",
    params:
        config_file=CONFIG_FILE,
        config=section("cmc"),
    log:
        "logs/{dataset}/cmc_shard_{shard}.log",
    benchmark:
        "results/{dataset}/benchmarks/cmc_shard_{shard}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne cmc-shard --config {params.config_file:q}"
        " --dataset {wildcards.dataset:q} --data {input.data:q} --weights {input.weights:q}"
        " --nlsq {input.nlsq:q} --shard {wildcards.shard:q} --output {output:q} > {log:q} 2>&1"


rule cmc_combine:
    input:
        data="results/{dataset}/dataset.h5",
        nlsq="results/{dataset}/nlsq.json",
        shards=shard_files("results/{dataset}/cmc/shard_{shard}.h5"),
        code=package_code(*CODE_BASE, "cmc", "cli/cmc_combine.py"),
    output:
        json=report(
            "results/{dataset}/cmc/summary.json",
            caption="../report/cmc_summary.rst",
            category="Results",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "file": "cmc/summary.json"},
        ),
        h5="results/{dataset}/cmc/combined.h5",
    params:
        config_file=CONFIG_FILE,
        config=section("cmc"),
    log:
        "logs/{dataset}/cmc_combine.log",
    benchmark:
        "results/{dataset}/benchmarks/cmc_combine.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne cmc-combine --config {params.config_file:q}"
        " --dataset {wildcards.dataset:q} --data {input.data:q} --nlsq {input.nlsq:q}"
        " --shards {input.shards:q}"
        " --output-json {output.json:q} --output-h5 {output.h5:q} > {log:q} 2>&1"
