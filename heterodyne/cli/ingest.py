"""`heterodyne ingest`: read the dataset's result file, select q/phi/frames, write dataset.h5."""

from heterodyne.config import dataset_section, load_config
from heterodyne.data.aps import open_correlation_file
from heterodyne.data.dataset import save_dataset
from heterodyne.data.selection import select_dataset
from heterodyne.provenance import provenance_record, sha256_file


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="workflow config (YAML)")
    parser.add_argument("--dataset", required=True, help="dataset name under `datasets`")
    parser.add_argument("--output", required=True, help="normalised dataset file to write (HDF5)")


def run(args):
    config = load_config(args.config)
    section = dataset_section(config, args.dataset, args.config)
    cfile = open_correlation_file(section["file"])
    dataset = select_dataset(cfile, sha256_file(section["file"]), q=section.get("q"),
                             q_index=section.get("q_index"), phi=section["phi"],
                             frames=section["frames"], time_origin=section["time_origin"])
    save_dataset(args.output, dataset, provenance_record(section, [section["file"]]))
    return 0
