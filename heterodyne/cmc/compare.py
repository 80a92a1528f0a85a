"""The consensus posterior held against the NLSQ fit and against the prior.

NLSQ comparison, per free physics parameter with NLSQ value c and standard error s and posterior
mean m and sd d (of the consensus draws, physical units):

    shift_in_stderr = (m - c) / s,     sd_in_stderr = d / s      (dimensionless).

For a well-determined, near-Gaussian posterior both fits agree: |shift| of order 1 or less and
d / s near 1 (d / s > 1 when the NLSQ standard errors are too small, e.g. a curved posterior).

Not determined by the data: a sampled quantity (free physics parameter, contrast_a, offset_a)
whose posterior sd exceeds ``UNDETERMINED_SD_RATIO`` times its prior sd, i.e. the data shrank the
prior by less than that factor, so the posterior mostly repeats the prior. The prior sd is the
nominal one of the ``cmc.prior`` rule (:class:`heterodyne.cmc.model.Prior`, half-width or sd
p = width * s for ``width_unit: stderr``, p = width for ``absolute``):

    truncated-normal: p,      uniform on [c - p, c + p]: p / sqrt(3)

(before truncation to the bounds, which can only make the true prior sd smaller).
"""

import numpy as np

#: posterior sd / prior sd above which a quantity is listed as not determined by the data
UNDETERMINED_SD_RATIO = 0.3


def nlsq_comparison(posterior, nlsq):
    """{name: {nlsq_value, nlsq_stderr, cmc_mean, cmc_sd, shift_in_stderr, sd_in_stderr}} of every
    free physics parameter of the nlsq.json record ``nlsq``, from the posterior summary
    ``posterior`` {name: {mean, sd, ...}} (module docstring)."""
    rows = {}
    for name, entry in nlsq["parameters"].items():
        if entry["fixed"]:
            continue
        value, stderr = float(entry["value"]), float(entry["stderr"])
        mean, sd = posterior[name]["mean"], posterior[name]["sd"]
        rows[name] = {
            "nlsq_value": value,
            "nlsq_stderr": stderr,
            "cmc_mean": mean,
            "cmc_sd": sd,
            "shift_in_stderr": (mean - value) / stderr,
            "sd_in_stderr": sd / stderr,
        }
    return rows


def prior_sd(prior):
    """(M,) nominal prior sd of each quantity of a :class:`~heterodyne.cmc.model.Prior` (module
    docstring), in physical units."""
    return np.where(prior.normal, prior.sd, prior.sd / np.sqrt(3.0))


def undetermined(posterior, names, prior):
    """[{parameter, sd, prior_sd, sd_over_prior_sd}] of the quantities ``names`` (the order of
    ``prior``) whose posterior sd exceeds UNDETERMINED_SD_RATIO times their prior sd."""
    found = []
    for name, width in zip(names, prior_sd(prior), strict=True):
        sd = posterior[name]["sd"]
        if sd > UNDETERMINED_SD_RATIO * width:
            found.append({"parameter": name, "sd": sd, "prior_sd": float(width), "sd_over_prior_sd": sd / float(width)})
    return found
