"""`heterodyne simulate`: write the demo result file from the config's `simulate` section."""

from heterodyne.config import dataset_section, load_config
from heterodyne.data.simulate import spec_from_section, write_simulated_file
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="workflow config (YAML)")
    parser.add_argument("--dataset", required=True, help="dataset name under `datasets`")
    parser.add_argument("--output", required=True, help="result file to write (HDF5)")


def run(args):
    config = load_config(args.config)
    dataset_section(config, args.dataset, args.config)
    spec = spec_from_section(config["simulate"])
    write_simulated_file(args.output, spec, provenance_record(config["simulate"], []))
    return 0
