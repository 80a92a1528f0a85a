"""``heterodyne`` command line: one subcommand per workflow step.

Each subcommand lives in its own module ``heterodyne.cli.<name>`` exposing
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their
subcommand runs, so ``heterodyne --help`` stays fast. Before a subcommand runs, :func:`main` turns
on JAX float64 and the compilation cache (:func:`heterodyne.jax_config.configure_jax`) and the
log format (:func:`configure_logging`). A step's settings arrive with
``--settings JSON``: the config sections it needs, passed by its Snakemake rule (so ``--config``
overrides and module use work; no step re-reads the config file). Bad input raises
:class:`heterodyne.errors.InputError`, printed here as one line with exit status 2; an output
that cannot be written raises :class:`heterodyne.errors.OutputError` (one line, exit status 1).
"""

import argparse
import importlib
import json
import logging
import sys

from heterodyne.config import validate_section
from heterodyne.errors import InputError, OutputError

# subcommand -> (module under heterodyne.cli, one-line help)
COMMANDS = {
    "simulate": ("simulate", "write a simulated APS 8-ID-I result file with known truth"),
    "q-bins": ("q_bins", "list the q bins of a dataset entry and their results folders"),
    "ingest": ("ingest", "read one q bin of an APS 8-ID-I file and write the normalised dataset"),
    "weight": ("weight", "estimate per-angle noise sigma and initial contrast/offset"),
    "fit-nlsq": ("fit_nlsq", "joint multi-angle NLSQ fit of the full meshgrid"),
    "fit-joint-q": ("fit_joint_q", "one NLSQ fit over all q bins: shared physics, per-q fractions"),
    "cmc-shard": ("cmc_shard", "NUTS on one Consensus Monte Carlo shard"),
    "cmc-combine": ("cmc_combine", "combine CMC shards into the consensus posterior"),
    "cmc-joint-q": ("cmc_joint_q", "joint multi-q posterior: consensus of the per-q CMC posteriors"),
    "figures": ("figures", "draw the figures of one dataset from saved results"),
    "paper": ("paper", "draw the journal figures (vector PDF) and their README from saved results"),
    "report": ("report", "write the self-contained HTML report of one dataset"),
    "tables": ("tables", "write the study tables parameters.csv and fit_quality.csv over all datasets"),
    "study-figure": ("study_figure", "draw each fitted parameter against the dataset over the study"),
    "cross-q": ("cross_q", "test whether the transport and velocity parameters of a dataset are the same at every q"),
    "audit": ("audit", "check that every result in a results folder matches the inputs it records"),
}

#: help texts of the input files several steps read
DATASET_HELP = "dataset.h5 written by `heterodyne ingest`"
WEIGHTS_HELP = "weights.json written by `heterodyne weight`"
NLSQ_HELP = "nlsq.json written by `heterodyne fit-nlsq`"


def configure_logging():
    """Log lines "time logger level: message" on stderr, at INFO for heterodyne's own loggers and
    WARNING for every library's; nothing changes when logging is already set up (a caller or a
    test did)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s")
        logging.getLogger("heterodyne").setLevel(logging.INFO)


def add_settings_argument(parser, *sections):
    """``--settings JSON``: a JSON object holding exactly the config ``sections`` this step reads
    (``dataset`` is the step's entry under ``datasets``)."""
    parser.add_argument(
        "--settings",
        required=True,
        metavar="JSON",
        help=f"JSON object with the config sections {', '.join(sections)} (the workflow rule passes them)",
    )
    parser.set_defaults(settings_sections=sections)


def add_folders_argument(parser, help_text):
    """``--folders FOLDER [FOLDER ...]`` (required): per-q result folders results/<dataset>/<q folder>."""
    parser.add_argument("--folders", nargs="+", required=True, metavar="FOLDER", help=help_text)


def add_required_arguments(parser, **helps):
    """One required option per keyword, in keyword order: ``--q-bins`` for ``q_bins``, its help
    text the keyword's value (the input and output files of a step)."""
    for name, help_text in helps.items():
        parser.add_argument(f"--{name.replace('_', '-')}", required=True, help=help_text)


def add_step_arguments(parser, sections, **files):
    """``--settings`` with the config ``sections`` (:func:`add_settings_argument`), then one
    required option per keyword of ``files`` (:func:`add_required_arguments`)."""
    add_settings_argument(parser, *sections)
    add_required_arguments(parser, **files)


def add_output_arguments(parser, json_help, h5_help):
    """``--output-json`` and ``--output-h5`` (both required): the step's JSON and HDF5 result files."""
    add_required_arguments(parser, output_json=json_help, output_h5=h5_help)


def read_settings(args):
    """{section: validated section, defaults filled} from ``--settings``; InputError names a
    missing or unexpected section or the first invalid key."""
    try:
        value = json.loads(args.settings)
    except json.JSONDecodeError as err:
        raise InputError(
            f"--settings: not valid JSON ({err}); pass a JSON object such as '{{\"nlsq\": {{}}}}'"
        ) from None
    wanted = set(args.settings_sections)
    if not isinstance(value, dict) or set(value) != wanted:
        found = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise InputError(
            f"--settings: expected a JSON object with the sections {sorted(wanted)}, "
            f"got {found}; pass exactly these config sections"
        )
    return {name: validate_section(name, value[name]) for name in args.settings_sections}


def build_parser(commands=COMMANDS):
    """Parser with one subparser per command; each command module adds its own arguments."""
    parser = argparse.ArgumentParser(prog="heterodyne", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in commands.items():
        sub.add_parser(name, help=help_text, description=help_text)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if argv and argv[0] in COMMANDS:
        from heterodyne.jax_config import configure_jax

        configure_jax()  # before the command's module is imported (only the chosen one is)
        configure_logging()
        module = importlib.import_module(f"heterodyne.cli.{COMMANDS[argv[0]][0]}")
        sub = argparse.ArgumentParser(prog=f"heterodyne {argv[0]}", description=COMMANDS[argv[0]][1])
        module.add_arguments(sub)
        args = sub.parse_args(argv[1:])
        try:
            return module.run(args)
        except (InputError, OutputError) as err:
            print(f"heterodyne {argv[0]}: error: {err}", file=sys.stderr)
            return 2 if isinstance(err, InputError) else 1
    parser.parse_args(argv)
    return 2


if __name__ == "__main__":
    sys.exit(main())
