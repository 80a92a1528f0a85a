"""`heterodyne q-bins`: list the q bins of a dataset entry and their results folders -> q_bins.json."""

from heterodyne.cli import add_step_arguments, read_settings
from heterodyne.data.aps import open_correlation_file
from heterodyne.data.q_bins import save_q_bins, select_q_bins
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    add_step_arguments(parser, ("dataset",), output="q_bins.json to write")


def run(args):
    section = read_settings(args)["dataset"]
    cfile = open_correlation_file(section["file"])
    bins = select_q_bins(
        cfile, q=section.get("q"), q_index=section.get("q_index"), phi=section["phi"], frames=section["frames"]
    )
    save_q_bins(args.output, bins, provenance_record({"dataset": section}, [section["file"]]))
    for entry in bins:
        print(
            f"{entry.folder}: q = {entry.q:.6g} 1/A (bin {entry.index}), {entry.n_angles} angle(s), "
            f"{entry.n_points} usable points"
        )
    return 0
