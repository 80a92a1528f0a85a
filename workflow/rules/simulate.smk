# The built-in demo: write datasets.{d}.file for every dataset with `simulate: true`, one rule
# `simulate_<dataset>` each (the output is the configured path itself, which holds no wildcard).

SIMULATED = [name for name in DATASETS if DEFAULTED["datasets"][name]["simulate"]]

# The simulation's own checks (one value per angle, distinct angles) before any job runs, not
# in the first simulate job.
if SIMULATED:
    from heterodyne.errors import InputError
    from heterodyne.simulate.spec import spec_from_section

    try:
        spec_from_section(DEFAULTED["simulate"])
    except InputError as err:
        raise WorkflowError(str(err)) from None

for simulated in SIMULATED:

    rule:
        "Simulate the demo dataset's APS 8-ID-I result file with known truth (`heterodyne simulate`)."
        name:
            f"simulate_{simulated}"
        input:
            code=package_code(*CODE_BASE, "simulate", "cli/simulate.py"),
        output:
            config["datasets"][simulated]["file"],
        log:
            f"logs/{simulated}/simulate.log",
        benchmark:
            f"results/{simulated}/benchmarks/simulate.tsv"
        conda:
            CONDA_ENV
        threads: 1
        params:
            settings=section("simulate"),
        shell:
            "pin_cpus.sh {threads} heterodyne simulate --settings {params.settings:q}"
            " --output {output:q} > {log:q} 2>&1"
