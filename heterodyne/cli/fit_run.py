"""The fit call the NLSQ commands (fit-nlsq, fit-joint-q) share: the summary line on success, the
one-line "fit failed" message on :class:`~heterodyne.fit.joint_fit.FitFailed`."""

import logging
import sys

from heterodyne.fit.joint_fit import FitFailed

log = logging.getLogger(__name__)


def run_fit(step, fit_function, *args):
    """``fit_function(*args)`` with its termination, iterations, chi2 and wall time logged; None after
    printing to stderr why ``heterodyne {step}`` failed (the caller then exits 1)."""
    try:
        fit = fit_function(*args)
    except FitFailed as err:
        print(
            f"heterodyne {step}: fit failed: {err}; check the data and the initial values (config: nlsq.initial)",
            file=sys.stderr,
        )
        return None
    log.info(
        "%s after %d iterations: chi2 = %.6g, reduced chi2 = %.4f (%.1f s)",
        fit.solver.termination,
        fit.solver.n_iterations,
        fit.chi2,
        fit.reduced_chi2,
        fit.solver.wall_time_s,
    )
    return fit
