# Read the raw APS 8-ID-I file of a dataset, apply its selection, write results/{d}/dataset.h5.
# A checkpoint: with cmc.points_per_shard the number of CMC shards is read from its output
# (shard_indices in common.smk).


checkpoint ingest:
    input:
        raw=lambda wildcards: config["datasets"][wildcards.dataset]["file"],
        code=package_code(*CODE_BASE, "cli/ingest.py"),
    output:
        "results/{dataset}/dataset.h5",
    params:
        config_file=CONFIG_FILE,
        config=dataset_section,
    log:
        "logs/{dataset}/ingest.log",
    benchmark:
        "results/{dataset}/benchmarks/ingest.tsv"
    threads: 1
    conda:
        CONDA_ENV
    shell:
        "pin_cpus.sh {threads} heterodyne ingest --config {params.config_file:q}"
        " --dataset {wildcards.dataset:q} --output {output:q} > {log:q} 2>&1"
