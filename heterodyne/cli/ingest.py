"""`heterodyne ingest`: read the dataset's result file, select q/phi/frames, write dataset.h5."""

from heterodyne.cli import add_config_arguments, load_dataset_config
from heterodyne.data.aps import open_correlation_file
from heterodyne.data.dataset import save_dataset
from heterodyne.data.selection import select_dataset
from heterodyne.provenance import provenance_record, sha256_file


def add_arguments(parser):
    add_config_arguments(parser)
    parser.add_argument("--output", required=True, help="normalised dataset file to write (HDF5)")


def run(args):
    _, section = load_dataset_config(args)
    cfile = open_correlation_file(section["file"])
    dataset = select_dataset(cfile, sha256_file(section["file"]), q=section.get("q"),
                             q_index=section.get("q_index"), phi=section["phi"],
                             frames=section["frames"], time_origin=section["time_origin"])
    save_dataset(args.output, dataset, provenance_record(section, [section["file"]]))
    return 0
