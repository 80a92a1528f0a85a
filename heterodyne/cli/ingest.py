"""`heterodyne ingest`: read one q bin of the dataset's result file, select phi and frames, write
dataset.h5."""

from heterodyne.cli import add_step_arguments, read_settings
from heterodyne.data.aps import open_correlation_file
from heterodyne.data.dataset import save_dataset
from heterodyne.data.q_bins import find_q_bin, load_q_bins
from heterodyne.data.selection import select_dataset
from heterodyne.lineage import check_lineage
from heterodyne.provenance import provenance_record, sha256_file


def add_arguments(parser):
    add_step_arguments(
        parser,
        ("dataset",),
        q_bins="q_bins.json written by `heterodyne q-bins`",
        q_folder="the q bin's results folder name, e.g. q0.01",
        output="normalised dataset file to write (HDF5)",
    )


def run(args):
    section = read_settings(args)["dataset"]
    check_lineage({args.q_bins: [section["file"]]})
    q_bin = find_q_bin(load_q_bins(args.q_bins), args.q_folder, args.q_bins)
    cfile = open_correlation_file(section["file"])
    dataset = select_dataset(
        cfile,
        sha256_file(section["file"]),
        q_index=q_bin.index,
        phi=section["phi"],
        frames=section["frames"],
        time_origin=section["time_origin"],
    )
    save_dataset(
        args.output,
        dataset,
        provenance_record({"dataset": section, "q_bin": q_bin.folder}, [section["file"], args.q_bins]),
    )
    return 0
