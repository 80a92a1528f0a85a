"""Look and saving of the paper figures: one font family and size, panel letters, vector PDF
with a compact provenance record in its metadata.

The rcParams of :func:`paper_rc_params` apply only inside ``style.styled(rc)`` and
``style.new_figure(..., rc=rc)`` (``matplotlib.rc_context``): global rcParams are never
changed. Every text, mathtext included (``mathtext.fontset`` custom), uses the one family at the
one size; fonts are embedded as TrueType (``pdf.fonttype`` 42). The page size is
exactly the figure size (no tight cropping): width = column width x 72 pt.

PDF metadata: ``Title`` = file stem; ``Subject`` = compact JSON {config_sha256, git_commit,
input_sha256 {path: SHA-256}, package_version}; ``Keywords`` = the same hash, version and commit
as text; ``Creator`` = package and matplotlib versions; no creation date (same inputs, same bytes).
"""

import json
import string

import matplotlib
from matplotlib import font_manager

from heterodyne.errors import InputError

#: narrowest panel [in] of a figure of equal panels in columns (cross_q, study)
MIN_PANEL_IN = 1.6


def check_font(family):
    """InputError unless matplotlib finds an installed font of ``family``."""
    try:
        font_manager.findfont(font_manager.FontProperties(family=[family]), fallback_to_default=False)
    except ValueError:
        raise InputError(
            f"paper.font_family: no installed font '{family}'; give an installed family "
            "(DejaVu Sans ships with matplotlib)"
        ) from None


def paper_rc_params(family, size):
    """rcParams over the shared style: every text in ``family`` at ``size`` pt, thin lines."""
    return {
        "font.family": family,
        "font.size": size,
        "axes.titlesize": size,
        "axes.labelsize": size,
        "xtick.labelsize": size,
        "ytick.labelsize": size,
        "legend.fontsize": size,
        "legend.title_fontsize": size,
        "figure.titlesize": size,
        "mathtext.fontset": "custom",
        "mathtext.rm": family,
        "mathtext.it": f"{family}:italic",
        "mathtext.bf": f"{family}:bold",
        "mathtext.sf": family,
        "mathtext.tt": family,
        "mathtext.cal": family,
        "axes.linewidth": 0.6,
        "xtick.major.width": 0.6,
        "ytick.major.width": 0.6,
        "xtick.minor.width": 0.4,
        "ytick.minor.width": 0.4,
        "xtick.major.size": 2.5,
        "ytick.major.size": 2.5,
        "lines.linewidth": 1.0,
        "lines.markersize": 2.5,
        "legend.handlelength": 1.5,
        "legend.borderaxespad": 0.3,
    }


def panel_columns(width_in, most):
    """Columns (1 to ``most``) of panels at least :data:`MIN_PANEL_IN` inches wide that fit in
    ``width_in`` inches."""
    return max(1, min(most, int(width_in // MIN_PANEL_IN)))


def panel_letters(axes):
    """Bold letters a, b, c, ... at the top left of ``axes`` (in order), outside the plot area."""
    for letter, ax in zip(string.ascii_lowercase, axes, strict=False):
        ax.set_title(letter, loc="left", fontweight="bold", pad=2)


def compact_provenance(record):
    """The part of a provenance record stored in a PDF: config hash, inputs, version, commit."""
    return {key: record[key] for key in ("config_sha256", "input_sha256", "package_version", "git_commit")}


def save_pdf(fig, path, record):
    """Save ``fig`` as a vector PDF at ``path`` with ``record`` (provenance) in its metadata."""
    compact = compact_provenance(record)
    metadata = {
        "Title": path.stem,
        "Subject": json.dumps(compact, sort_keys=True, separators=(",", ":"), default=str),
        "Keywords": (
            f"heterodyne {compact['package_version']}, config_sha256 {compact['config_sha256']}, "
            f"git {compact['git_commit']}"
        ),
        "Creator": f"heterodyne {compact['package_version']} (matplotlib {matplotlib.__version__})",
        "CreationDate": None,
    }
    fig.savefig(path, format="pdf", metadata=metadata)
