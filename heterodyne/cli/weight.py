"""`heterodyne weight`: per-angle noise sigma and initial contrast/offset -> weights.json."""

from heterodyne.cli import DATASET_HELP, add_step_arguments, read_settings
from heterodyne.data.dataset import load_dataset
from heterodyne.errors import InputError
from heterodyne.provenance import provenance_record
from heterodyne.weighting.estimate import angle_weights
from heterodyne.weighting.weights_file import save_weights


def add_arguments(parser):
    add_step_arguments(parser, ("weight",), data=DATASET_HELP, output="weights file to write (JSON)")


def run(args):
    section = read_settings(args)["weight"]
    dataset = load_dataset(args.data)
    try:
        weights = angle_weights(dataset, section["method"], section["long_lag_fraction"])
    except ValueError as err:
        raise InputError(
            f"{args.data}: cannot weight the angles ({err}); check the dataset's frame window and angles in the config"
        ) from err
    save_weights(args.output, weights, provenance_record(section, [args.data]))
    return 0
