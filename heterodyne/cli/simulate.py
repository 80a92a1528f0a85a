"""`heterodyne simulate`: write the demo result file from the config's `simulate` section."""

from heterodyne.cli import add_step_arguments, read_settings
from heterodyne.provenance import provenance_record
from heterodyne.simulate.aps_file import write_simulated_file
from heterodyne.simulate.spec import spec_from_section


def add_arguments(parser):
    add_step_arguments(parser, ("simulate",), output="result file to write (HDF5)")


def run(args):
    section = read_settings(args)["simulate"]
    write_simulated_file(args.output, spec_from_section(section), provenance_record(section, []))
    return 0
