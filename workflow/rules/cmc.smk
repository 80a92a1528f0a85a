# Consensus Monte Carlo: NUTS on each of K shards (one job each), then the consensus
# combination -> results/{d}/{q}/cmc/summary.json and combined.h5. K: shard_indices (common.smk).


rule cmc_shard:
    "NUTS on one Consensus Monte Carlo shard of one q bin -> cmc/shard_<k>.h5."
    input:
        data="results/{dataset}/{qbin}/dataset.h5",
        weights="results/{dataset}/{qbin}/weights.json",
        nlsq="results/{dataset}/{qbin}/nlsq.json",
        code=package_code(*CODE_BASE, *RESULT_FILE_OWNERS, "cmc", "cli/cmc_shard.py"),
    output:
        "results/{dataset}/{qbin}/cmc/shard_{shard}.h5",
    log:
        "logs/{dataset}/{qbin}/cmc_shard_{shard}.log",
    benchmark:
        "results/{dataset}/{qbin}/benchmarks/cmc_shard_{shard}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(3000),
        runtime=per_attempt(90),
    params:
        settings=section("cmc", "nlsq"),
    shell:
        "pin_cpus.sh {threads} heterodyne cmc-shard --settings {params.settings:q}"
        " --data {input.data:q} --weights {input.weights:q}"
        " --nlsq {input.nlsq:q} --shard {wildcards.shard:q} --output {output:q} > {log:q} 2>&1"


rule cmc_combine:
    "Combine a q bin's CMC shards into the consensus posterior -> cmc/summary.json, combined.h5."
    input:
        data="results/{dataset}/{qbin}/dataset.h5",
        nlsq="results/{dataset}/{qbin}/nlsq.json",
        shards=shard_files("results/{dataset}/{qbin}/cmc/shard_{shard}.h5"),
        code=package_code(*CODE_BASE, *RESULT_FILE_OWNERS, "cmc", "cli/cmc_combine.py"),
    output:
        json=report(
            "results/{dataset}/{qbin}/cmc/summary.json",
            caption="../report/cmc_summary.rst",
            category="Results",
            subcategory="{dataset} {qbin}",
            labels={"dataset": "{dataset}", "q": "{qbin}", "file": "cmc/summary.json"},
        ),
        h5="results/{dataset}/{qbin}/cmc/combined.h5",
    log:
        "logs/{dataset}/{qbin}/cmc_combine.log",
    benchmark:
        "results/{dataset}/{qbin}/benchmarks/cmc_combine.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(15),
    params:
        settings=section("cmc", "nlsq"),
    shell:
        "pin_cpus.sh {threads} heterodyne cmc-combine --settings {params.settings:q}"
        " --data {input.data:q} --nlsq {input.nlsq:q}"
        " --shards {input.shards:q}"
        " --output-json {output.json:q} --output-h5 {output.h5:q} > {log:q} 2>&1"
