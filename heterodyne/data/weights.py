"""Per-angle weights file shared by both fits (JSON, written atomically).

``sigma`` [c2 units] is the noise standard deviation of one off-diagonal c2 element at each angle;
residuals are (model - data) / sigma_phi. ``contrast`` and ``offset`` are initial values for the
fits. ``method`` is "robust" (estimated) or "uniform" (sigma = 1 at every angle).
"""

import json
from dataclasses import asdict, dataclass

import numpy as np

from heterodyne.atomic import atomic_output
from heterodyne.errors import InputError


@dataclass(frozen=True)
class AngleWeights:
    phi: np.ndarray
    sigma: np.ndarray
    contrast: np.ndarray
    offset: np.ndarray
    method: str


def save_weights(path, weights, provenance):
    """Write weights and their provenance record as JSON."""
    record = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(weights).items()}
    record["provenance"] = provenance
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def load_weights(path):
    """Read a weights file written by :func:`save_weights`."""
    try:
        record = json.loads(open(path).read())
        return AngleWeights(phi=np.asarray(record["phi"], float), sigma=np.asarray(record["sigma"], float),
                            contrast=np.asarray(record["contrast"], float),
                            offset=np.asarray(record["offset"], float), method=record["method"])
    except (OSError, KeyError, ValueError) as err:
        raise InputError(f"{path}: not a heterodyne weights file ({err}); re-run `heterodyne weight`") from err
