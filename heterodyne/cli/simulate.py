"""`heterodyne simulate`: write the demo result file from the config's `simulate` section."""

from heterodyne.cli import add_config_arguments, load_dataset_config
from heterodyne.data.simulate import spec_from_section, write_simulated_file
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    add_config_arguments(parser)
    parser.add_argument("--output", required=True, help="result file to write (HDF5)")


def run(args):
    config, _ = load_dataset_config(args)
    spec = spec_from_section(config["simulate"])
    write_simulated_file(args.output, spec, provenance_record(config["simulate"], []))
    return 0
