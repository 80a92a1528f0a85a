# The built-in demo: write datasets.{d}.file for every dataset with `simulate: true`, one rule
# `simulate_<dataset>` each (the output is the configured path itself, which holds no wildcard).

SIMULATED = [name for name in DATASETS if config["datasets"][name]["simulate"]]

for simulated in SIMULATED:

    rule:
        name:
            f"simulate_{simulated}"
        input:
            code=package_code(*CODE_BASE, "cli/simulate.py"),
        output:
            config["datasets"][simulated]["file"],
        params:
            config_file=CONFIG_FILE,
            dataset=simulated,
            config=section("simulate"),
        log:
            f"logs/{simulated}/simulate.log",
        benchmark:
            f"results/{simulated}/benchmarks/simulate.tsv"
        threads: 1
        conda:
            CONDA_ENV
        shell:
            "pin_cpus.sh {threads} heterodyne simulate --config {params.config_file:q}"
            " --dataset {params.dataset:q} --output {output:q} > {log:q} 2>&1"
