"""``heterodyne paper``: journal figures (vector PDF) and README.md from saved results.

Reads ``<results>/<dataset>/q_bins.json`` of the datasets the ``paper`` section names and, per
figure, only the files of :data:`heterodyne.plots.paper_plan.FILES_OF` in the q-bin folders (the
workflow's rule lists them with :func:`heterodyne.plots.paper.rule_inputs`). Writes
``<stem>.pdf`` per figure and README.md into --outdir, replaced as a whole only on success: bad
settings (a dataset, q bin or angle not in the results) leave nothing.
"""

import matplotlib.pyplot as plt

from heterodyne.atomic import atomic_folder
from heterodyne.cli import add_step_arguments, read_settings
from heterodyne.lineage import digest
from heterodyne.plots.paper import draw_plan
from heterodyne.plots.paper_plan import check_inputs_exist, plan_figures
from heterodyne.plots.paper_readme import figure_section, readme_text
from heterodyne.plots.paper_style import check_font, paper_rc_params, save_pdf
from heterodyne.plots.style import styled
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    add_step_arguments(
        parser,
        ("paper", "datasets", "figures"),
        results="results folder holding <dataset>/q_bins.json and <dataset>/<q folder>/",
        outdir="output folder, e.g. results/paper",
    )


def run(args):
    settings = read_settings(args)
    section = settings["paper"]
    check_font(section["font_family"])
    plans = plan_figures(settings, args.results)
    check_inputs_exist(plans)
    rc = paper_rc_params(section["font_family"], section["font_size"])
    sections, loaded, record = [], {}, provenance_record(settings, [])
    with atomic_folder(args.outdir) as outdir:
        for plan in plans:
            # each input hashed once per run (lineage.digest caches by size and mtime)
            figure_record = {**record, "input_sha256": {str(p): digest(p) for p in plan.inputs}}
            with styled(rc):
                fig, angles = draw_plan(plan, settings["figures"], rc, loaded)
                save_pdf(fig, outdir / f"{plan.stem}.pdf", figure_record)
            size = tuple(fig.get_size_inches())
            plt.close(fig)
            sections.append(figure_section(plan, figure_record, size, settings["figures"], angles))
        (outdir / "README.md").write_text(readme_text(settings, record, sections))
    return 0
