"""Shared look of every figure and the one way a figure is saved.

Every figure is saved as PNG at :data:`DPI` dots per inch (pixel size = figure size in inches x
200, no tight cropping, so sizes are predictable) and as PDF, with a reStructuredText caption
``<stem>.rst`` beside it (rendered from ``heterodyne/plots/captions/<template>.rst``), for
``snakemake --report`` and the HTML report. The provenance record is stored in the PNG as the text
chunk ``provenance`` and in the PDF info dictionary as ``Subject`` (JSON).
"""

import json
import math
import string
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

#: PNG resolution, dots per inch
DPI = 200
#: sequential colour map of c2 data and model (shared scale)
C2_CMAP = "viridis"
#: diverging colour map of normalised residuals (symmetric scale)
RESIDUAL_CMAP = "RdBu_r"
#: colours of the two estimates wherever NLSQ and CMC appear together
NLSQ_COLOR = "#c0392b"
CMC_COLOR = "#2463a6"
DATA_COLOR = "#333333"

CAPTION_DIR = Path(__file__).with_name("captions")

_RC = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.grid": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "image.interpolation": "nearest",
    "pdf.fonttype": 42,
    "savefig.dpi": DPI,
    "figure.dpi": 100,
}


def rc_params(overrides=None):
    """The shared rcParams, with ``overrides`` (a dict of rcParams) on top."""
    return {**_RC, **(overrides or {})}


def active_rc():
    """The current values of the shared rcParams' keys: passed as ``rc`` to :func:`new_figure`,
    a figure keeps the style of an enclosing :func:`styled` context (e.g. the paper style)."""
    return {key: plt.rcParams[key] for key in _RC}


def scaled_to_width(fig, width_in):
    """``fig`` resized to ``width_in`` inches wide, its height scaled by the same factor (panels
    keep their aspect ratio)."""
    width, height = fig.get_size_inches()
    fig.set_size_inches(width_in, height * width_in / width)
    return fig


def new_figure(width_in, height_in, nrows=1, ncols=1, rc=None, **subplot_kw):
    """Figure of exactly ``width_in`` x ``height_in`` inches with a grid of axes (constrained
    layout, so labels never spill out of the fixed canvas); ``rc`` overrides the shared
    rcParams."""
    with plt.rc_context(rc_params(rc)):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(width_in, height_in), squeeze=False, layout="constrained", **subplot_kw
        )
    return fig, axes


def panel_grid(n_panels, panel_size, max_columns):
    """(figure, the first ``n_panels`` axes in reading order) of a grid of at most ``max_columns``
    columns, each panel ``panel_size`` (width, height) inches; the unused panels of the last row are
    switched off."""
    ncols = min(n_panels, max_columns)
    nrows = math.ceil(n_panels / ncols)
    fig, axes = new_figure(panel_size[0] * ncols, panel_size[1] * nrows, nrows=nrows, ncols=ncols)
    for ax in axes.flat[n_panels:]:
        ax.set_axis_off()
    return fig, list(axes.flat[:n_panels])


def styled(rc=None):
    """Context manager applying the shared rcParams (``rc`` overrides on top) while artists are
    drawn; rcParams are restored on exit."""
    return plt.rc_context(rc_params(rc))


def render_caption(template, **fields):
    """Caption text from ``captions/<template>.rst`` with ``$field`` placeholders filled."""
    text = (CAPTION_DIR / f"{template}.rst").read_text()
    return string.Template(text).substitute(**fields)


def save_figure(fig, outdir, stem, caption, provenance):
    """Write ``<stem>.png`` (200 dpi), ``<stem>.pdf`` and ``<stem>.rst`` into ``outdir``; close fig.

    Returns the PNG path.
    """
    outdir = Path(outdir)
    record = json.dumps(provenance, sort_keys=True, default=str)
    png = outdir / f"{stem}.png"
    with styled():
        fig.savefig(png, dpi=DPI, metadata={"provenance": record})
        fig.savefig(outdir / f"{stem}.pdf", metadata={"Subject": record, "Title": stem})
    plt.close(fig)
    (outdir / f"{stem}.rst").write_text(caption.rstrip() + "\n")
    return png
