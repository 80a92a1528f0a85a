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


#: largest difference [deg] between a weights file's angles and the dataset's for them to match
PHI_TOLERANCE_DEG = 1e-6


def check_weights_for(dataset, weights, path):
    """Raise InputError unless ``weights`` (read from ``path``) are for the angles of ``dataset``
    and every sigma is finite and > 0."""
    phi = np.asarray(dataset.phi, dtype=np.float64)
    if len(weights.phi) != len(phi) or not np.allclose(weights.phi, phi, rtol=0, atol=PHI_TOLERANCE_DEG):
        raise InputError(f"{path}: weights are for phi = {np.asarray(weights.phi, float).tolist()} deg "
                         f"but the dataset {dataset.source_path or ''} has phi = {phi.tolist()} deg; "
                         "re-run `heterodyne weight` on this dataset")
    sigma = np.asarray(weights.sigma, dtype=np.float64)
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise InputError(f"{path}: 'sigma' must be finite and > 0 at every angle, got "
                         f"{sigma.tolist()}; re-run `heterodyne weight`")


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
