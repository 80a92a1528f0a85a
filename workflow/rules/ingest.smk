# The q bins of a dataset (checkpoint q_bins -> results/{d}/q_bins.json: which bins, the folder and
# number of usable points of each), then for each bin: read it from the raw APS 8-ID-I file, apply
# the selection, write results/{d}/{q}/dataset.h5. The per-q jobs and, unless cmc.num_shards is
# given, the number of CMC shards come from q_bins.json (q_bins, shard_indices in common.smk).


checkpoint q_bins:
    "List a dataset's selected q bins, their folders and usable points -> results/{d}/q_bins.json."
    input:
        raw=lambda wildcards: config["datasets"][wildcards.dataset]["file"],
        code=package_code(*CODE_BASE, "cli/q_bins.py"),
    output:
        "results/{dataset}/q_bins.json",
    log:
        "logs/{dataset}/q_bins.log",
    conda:
        CONDA_ENV
    threads: 1
    params:
        settings=dataset_section(),
    shell:
        "pin_cpus.sh {threads} heterodyne q-bins --settings {params.settings:q}" " --output {output:q} > {log:q} 2>&1"


rule ingest:
    "Read one q bin's maps from the raw file, select angles and frames -> results/{d}/{q}/dataset.h5."
    input:
        raw=lambda wildcards: config["datasets"][wildcards.dataset]["file"],
        q_bins="results/{dataset}/q_bins.json",
        code=package_code(*CODE_BASE, "cli/ingest.py"),
    output:
        "results/{dataset}/{qbin}/dataset.h5",
    log:
        "logs/{dataset}/{qbin}/ingest.log",
    benchmark:
        "results/{dataset}/{qbin}/benchmarks/ingest.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        settings=dataset_section(),
    shell:
        "pin_cpus.sh {threads} heterodyne ingest --settings {params.settings:q}"
        " --q-bins {input.q_bins:q} --q-folder {wildcards.qbin:q} --output {output:q} > {log:q} 2>&1"
