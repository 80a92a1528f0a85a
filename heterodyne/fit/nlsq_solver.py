"""Thin wrapper of ``nlsq.LeastSquares().least_squares`` (trust-region reflective with bounds).

``nlsq`` 0.6.7 has import-time side effects that we undo here: it points JAX's compilation cache
at ~/.cache/nlsq and changes its minimum compile time (both restored to heterodyne's values), adds
handlers to the root logger (removed; its own loggers lose their handlers and are set to WARNING)
and creates an empty folder ``.nlsq_cache`` in the current folder for a disk cache that the
solver never uses (removed, and that cache switched off). It is imported on first use only. A
fresh ``LeastSquares`` object is made for every solve: one object must never serve two models.
"""

import logging
import os
import time
from typing import NamedTuple

import jax
import numpy as np

log = logging.getLogger(__name__)
_NLSQ = None
#: the folder nlsq creates in the current folder at import (its SmartCache default)
NLSQ_DISK_CACHE = ".nlsq_cache"


def _nlsq_module():
    global _NLSQ
    if _NLSQ is None:
        cache = {
            key: getattr(jax.config, key)
            for key in ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
        }
        root = logging.getLogger()
        handlers_before = list(root.handlers)
        had_disk_cache = os.path.exists(NLSQ_DISK_CACHE)
        import nlsq
        from nlsq.caching.smart_cache import get_global_cache

        for key, value in cache.items():
            jax.config.update(key, value)
        for handler in root.handlers[:]:
            if handler not in handlers_before:
                root.removeHandler(handler)
        get_global_cache().disk_cache_enabled = False
        if not had_disk_cache:
            try:
                os.rmdir(NLSQ_DISK_CACHE)
            except OSError:  # not made here, or another process uses it
                pass
        _NLSQ = nlsq
    _quiet_nlsq_loggers()
    return _NLSQ


def _quiet_nlsq_loggers():
    """Drop the handlers nlsq gives its loggers (created lazily, also by each solver object) and
    raise them to WARNING, so only warnings reach the application's logging."""
    for name in list(logging.root.manager.loggerDict):
        if name == "nlsq" or name.startswith("nlsq."):
            logger = logging.getLogger(name)
            logger.setLevel(logging.WARNING)
            for handler in logger.handlers[:]:
                logger.removeHandler(handler)


class SolverOutcome(NamedTuple):
    """x (n,) best parameters; cost = chi2 / 2; status and message of nlsq (status > 0 means a
    convergence test was met, 0 means the evaluation limit was hit); n_iterations, n_function_evals,
    n_jacobian_evals."""

    x: np.ndarray
    cost: float
    status: int
    message: str
    n_iterations: int
    n_function_evals: int
    n_jacobian_evals: int

    @property
    def converged(self):
        return self.status > 0


def solve(residuals, jacobian, x0, lower, upper, settings):
    """Minimise 0.5 * sum residuals(x)^2 subject to lower <= x <= upper from x0 by TRF, stopping at
    ``settings.max_nfev``, ``ftol``, ``xtol`` or ``gtol`` (a :class:`~heterodyne.fit.settings.FitSettings`).

    ``residuals(x)`` -> (m,) and ``jacobian(x)`` -> (m, n) take a NumPy float64 vector.
    Parameters are scaled by the Jacobian's column norms (``x_scale="jac"``) because the
    physics parameters span many orders of magnitude.
    """
    solver = _nlsq_module().LeastSquares()
    _quiet_nlsq_loggers()
    result = solver.least_squares(
        residuals,
        np.asarray(x0, dtype=np.float64),
        jac=jacobian,
        bounds=(np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)),
        method="trf",
        ftol=settings.ftol,
        xtol=settings.xtol,
        gtol=settings.gtol,
        x_scale="jac",
        max_nfev=settings.max_nfev,
    )
    return SolverOutcome(
        x=np.asarray(result.x, dtype=np.float64),
        cost=float(result.cost),
        status=int(result.status),
        message=str(result.message),
        n_iterations=int(result.get("nit") or 0),
        n_function_evals=int(result.nfev),
        n_jacobian_evals=int(result.njev or 0),
    )


def best_of_starts(residuals, jacobian, starts, lower, upper, settings, names):
    """The :func:`solve` outcome of lowest finite cost over ``starts``, or None when none has one. A start
    whose residuals are not all finite is skipped with a warning that gives its values by ``names``."""
    best = None
    for k, x0 in enumerate(starts):
        if not np.all(np.isfinite(np.asarray(residuals(x0)))):
            log.warning(
                "start %d/%d: residuals not finite at %s; skipped",
                k + 1,
                len(starts),
                dict(zip(names, np.asarray(x0).tolist(), strict=True)),
            )
            continue
        outcome = solve(residuals, jacobian, x0, lower, upper, settings)
        log.info("start %d/%d: chi2 = %.6g, %s", k + 1, len(starts), 2 * outcome.cost, outcome.message)
        if np.isfinite(outcome.cost) and (best is None or outcome.cost < best.cost):
            best = outcome
    return best


class SolverStats(NamedTuple):
    """How a fit's solver run went, alike for the per-q and the joint fit: converged (a convergence
    test was met and the data determine every covariance name), termination (nlsq's message, plus
    the undetermined names), n_iterations, n_function_evals, wall_time_s, stderr_scaling (the
    standard-error estimator), chunked (memory-bounded mode used), n_starts (starts tried),
    undetermined (covariance names the data do not determine: NaN standard error)."""

    converged: bool
    termination: str
    n_iterations: int
    n_function_evals: int
    wall_time_s: float
    stderr_scaling: str
    chunked: bool
    n_starts: int
    undetermined: list


def solver_stats(best, undetermined, started, stderr_scaling, chunked, n_starts):
    """:class:`SolverStats` of the winning :class:`SolverOutcome` ``best`` of a fit begun at
    ``time.perf_counter()`` = ``started``; names in ``undetermined`` make it not converged, are
    appended to the termination message and logged as a warning."""
    termination = best.message
    if undetermined:
        termination = (
            f"{termination.rstrip('.')}; not determined by the data: {', '.join(undetermined)} "
            "(J^T J is singular along them: fix them in nlsq.fixed or fit data that separate them)"
        )
        log.warning(
            "the data do not determine %s: converged = false, no standard errors for them", ", ".join(undetermined)
        )
    return SolverStats(
        converged=best.converged and not undetermined,
        termination=termination,
        n_iterations=best.n_iterations,
        n_function_evals=best.n_function_evals,
        wall_time_s=time.perf_counter() - started,
        stderr_scaling=stderr_scaling,
        chunked=chunked,
        n_starts=n_starts,
        undetermined=list(undetermined),
    )
