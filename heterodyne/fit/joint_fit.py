"""The joint multi-angle NLSQ fit: solver, multi-start, memory-bounded mode, uncertainties.

The solver works on the free physics parameters only (variable projection: contrast/offset are
solved exactly inside each residual evaluation, see :mod:`heterodyne.fit.problem`).

* In memory (estimated Jacobian n_phi * n_pairs * n_free * 8 bytes within the budget): nlsq gets
  the projected residuals and their jacfwd Jacobian.
* Above the budget: J is never built. For each x, M = J^T J, g = J^T r and chi2 are accumulated
  in chunks in the expanded parameters (see :mod:`heterodyne.fit.uncertainty`); the Gauss-Newton
  matrix of the projected problem is the Schur complement S = M_xx - M_xl M_ll^-1 M_lx (Kaufman's
  variable projection), and the gradient is g_x (exact, since J_l^T r = 0 at the linear optimum).
  nlsq then sees the equivalent small system J_eff = [S^1/2; 0], f_eff = [S^-1/2 g_x; rest] with
  J_eff^T J_eff = S, J_eff^T f_eff = g_x and |f_eff|^2 = chi2, so every TRF quantity (cost,
  gradient, model reduction, Jacobian scaling) is the same as with the full Jacobian.

Goodness of fit: chi2 = sum_a chi2_a, dof = n_valid - n_free - n_scaling (n_scaling = 2 n_phi or
2), reduced chi2 = chi2 / dof; per angle, reduced_a = chi2_a / (dof * n_a / n_valid) (the dof
shared out in proportion to the angle's n_a valid pairs).
"""

import logging
import time
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from heterodyne.core.parameters import PARAMETER_NAMES
from heterodyne.core.symmetries import canonical, components_mirror, exchange_absorber, exchanged_start
from heterodyne.errors import InputError
from heterodyne.fit.identifiability import undetermined_combinations
from heterodyne.fit.multistart import latin_hypercube_starts
from heterodyne.fit.nlsq_solver import SolverStats, best_of_starts, solve, solver_stats
from heterodyne.fit.problem import full_theta, jacobian_jit, n_valid, optimal_scaling, residuals_jit
from heterodyne.fit.speckle_covariance import score_covariance
from heterodyne.fit.uncertainty import (
    STDERR_SANDWICH,
    STDERR_SCALING,
    chunk_pairs,
    chunked_scaling_sums,
    covariance_fields,
    normal_equations,
    over_budget,
)

log = logging.getLogger(__name__)


class FitFailed(Exception):
    """The fit produced non-finite numbers (NaN/inf chi2 or parameters)."""


class NlsqFit(NamedTuple):
    """Result of :func:`fit_joint`. theta (14,) best fit (fixed entries = their set value);
    theta_stderr (14,) NaN where fixed; free_names; contrast, offset and their stderr (n_phi,)
    (one value repeated when shared); covariance (n_p, n_p) over covariance_names = free names +
    contrast/offset names; covariance_independent the same matrix had every element independent
    noise ((J^T J)^-1 chi2 / dof; equal to covariance unless an angle has the speckle noise model);
    correlation likewise; chi2, chi2_per_angle (n_phi,), n_valid_per_angle, dof, reduced_chi2,
    reduced_chi2_per_angle; at_bound (14,) bool; solver
    (:class:`~heterodyne.fit.nlsq_solver.SolverStats`: converged, termination, ..., undetermined);
    exchanged_optimum (:func:`other_optimum`: the other optimum reached from the exchanged
    components, or None)."""

    theta: np.ndarray
    theta_stderr: np.ndarray
    free_names: list
    contrast: np.ndarray
    contrast_stderr: np.ndarray
    offset: np.ndarray
    offset_stderr: np.ndarray
    covariance: np.ndarray
    covariance_independent: np.ndarray
    covariance_names: list
    correlation: np.ndarray
    chi2: float
    chi2_per_angle: np.ndarray
    n_valid_per_angle: np.ndarray
    dof: int
    reduced_chi2: float
    reduced_chi2_per_angle: np.ndarray
    at_bound: np.ndarray
    solver: SolverStats
    exchanged_optimum: dict | None = None


def equivalent_system(schur, grad, chi2):
    """(f_eff, J_eff) of the small system that stands for the projected problem (module
    docstring): J_eff = [S^1/2; 0] and f_eff = [S^-1/2 g; rest] from S = V diag(lam) V^T, with
    J_eff^T J_eff = S, J_eff^T f_eff = g and |f_eff|^2 = chi2 (directions with sqrt(lam) below
    1e-12 of the largest are left out of S^-1/2)."""
    lam, vec = np.linalg.eigh(0.5 * (schur + schur.T))
    root = np.sqrt(np.clip(lam, 0.0, None))
    keep = root > root.max() * 1e-12
    top = np.where(keep, (vec.T @ grad) / np.where(keep, root, 1.0), 0.0)
    rest = np.sqrt(max(chi2 - float(top @ top), 0.0))
    return np.concatenate([top, [rest]]), np.vstack([root[:, None] * vec.T, np.zeros((1, len(grad)))])


def schur_complement(m, nf):
    """S = M_xx - M_xl M_ll^-1 M_lx of the normal matrix ``m`` whose first ``nf`` rows/columns are
    the free parameters x and the rest the scaling l (pseudo-inverse of M_ll)."""
    m_xl, m_ll = m[:nf, nf:], m[nf:, nf:]
    return m[:nf, :nf] - m_xl @ np.linalg.pinv(m_ll, hermitian=True) @ m_xl.T


class CachedSystem:
    """Residual and Jacobian callables served by one evaluation per new x: a subclass gives
    ``_system(x)`` -> (residuals, Jacobian) for a NumPy float64 ``x``."""

    _x, _f, _j = None, None, None

    def _evaluate(self, x):
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or not np.array_equal(x, self._x):
            self._f, self._j = self._system(x)
            self._x = x.copy()

    def residuals(self, x):
        self._evaluate(x)
        return self._f

    def jacobian(self, x):
        self._evaluate(x)
        return self._j


class CompressedGaussNewton(CachedSystem):
    """Residual and Jacobian callables of size n_free + 1 for the memory-bounded mode (see the
    module docstring). One chunked pass per new x serves both callables."""

    def __init__(self, template, free_index, problem, chunk, shared):
        self._args = (template, free_index, problem)
        self._chunk, self._shared = chunk, shared

    def _system(self, x):
        template, free_index, problem = self._args
        p = expanded_parameters(x, template, free_index, problem, self._chunk, self._shared)
        m, g, chi2 = (
            np.asarray(a) for a in normal_equations(p, template, free_index, problem, self._chunk, self._shared)
        )
        nf = len(x)
        return equivalent_system(schur_complement(m, nf), g[:nf], float(chi2.sum()))


def expanded_parameters(x_free, template, free_index, problem, chunk, shared):
    """p = [x_free, contrast (n_s), offset (n_s)] with contrast/offset at their optimum."""
    sums = chunked_scaling_sums(jnp.asarray(x_free), template, free_index, problem, chunk)
    c, o = optimal_scaling(sums, shared)
    n_s = 1 if shared else problem.phi.shape[0]
    return jnp.concatenate([jnp.asarray(x_free), c[:n_s], o[:n_s]])


def _scaling_names(n_phi, shared):
    if shared:
        return ["contrast", "offset"]
    return [f"contrast_{a}" for a in range(n_phi)] + [f"offset_{a}" for a in range(n_phi)]


def canonical_solution(x_free, settings, t_mean):
    """The equivalent free-parameter vector under the model's exact symmetries
    (:func:`heterodyne.core.symmetries.canonical`): v0 >= 0 and, where reference and sample can
    be exchanged, J_ref(t_mean) <= J_sample(t_mean) (t_mean [s], the map's mean time). Every
    residual is unchanged; a flip is made only when its result lies within the bounds."""
    free = np.asarray(settings.free)
    theta = settings.initial.copy()
    theta[free] = x_free
    absorber = exchange_absorber(settings.free_names, theta)
    flipped = canonical(theta, t_mean, absorber, settings.lower, settings.upper)
    fixed_kept = np.delete(flipped, free) == np.delete(theta, free)
    inside = np.all((settings.lower <= flipped) & (flipped <= settings.upper))
    return flipped[free] if inside and np.all(fixed_kept) else np.asarray(x_free, np.float64)


def exchange_restart(x_free, settings, t):
    """Free-parameter start in the basin of the exchanged components
    (:func:`heterodyne.core.symmetries.exchanged_start`, x_s matched at the first and third
    quarter of the time grid ``t`` [s]), clipped to the bounds; None where that is no move of this
    fit: f0 or f1 fixed (a constant fraction is exchanged exactly by :func:`canonical_solution`)
    or the components not free alike."""
    names = settings.free_names
    if not ({"f0", "f1"} <= set(names) and components_mirror(names, settings.initial)):
        return None
    free = np.asarray(settings.free)
    theta = settings.initial.copy()
    theta[free] = x_free
    n = len(t)
    start = exchanged_start(theta, float(t[n // 4]), float(t[3 * n // 4]))
    if start is None:
        return None
    return np.clip(start[free], settings.lower[free], settings.upper[free])


def other_optimum(other_x, best_x, stderr, settings, t_mean, delta_chi2):
    """The optimum the restart from the exchanged components reached when it is not the best one:
    {"theta": (14,) in canonical form (:func:`canonical_solution`), "delta_chi2": its chi2 minus the
    best chi2 (>= 0)}; None when some free parameter is undetermined or every one lies within
    3 standard errors ``stderr`` (free, units of each) of ``best_x`` (the same solution)."""
    other_x = canonical_solution(other_x, settings, t_mean)
    if not (np.all(np.isfinite(other_x)) and np.all(np.isfinite(stderr))):
        return None
    if np.all(np.abs(other_x - best_x) <= 3.0 * stderr):
        return None
    theta = settings.initial.copy()
    theta[np.asarray(settings.free)] = other_x
    return {"theta": theta, "delta_chi2": float(delta_chi2)}


def fit_joint(problem, settings, noise=None):
    """Fit ``problem`` (:class:`~heterodyne.fit.problem.FitProblem`) with ``settings``
    (:class:`~heterodyne.fit.settings.FitSettings`); returns :class:`NlsqFit`. ``noise``: the
    angles' :class:`~heterodyne.noise_model.AngleNoise` (the weights' ``noise``); where one is
    "speckle" the standard errors come from the sandwich covariance
    (:mod:`heterodyne.fit.speckle_covariance`)."""
    started = time.perf_counter()
    shared = settings.shared_scaling
    n_phi, n_pairs = problem.weight.shape
    free = np.asarray(settings.free)
    n_free, n_s = len(free), 1 if shared else n_phi
    n_p = n_free + 2 * n_s
    counts = n_valid(problem)
    dof = int(counts.sum()) - n_p
    undetermined = undetermined_combinations(settings.free_names, settings.initial, n_phi)
    if undetermined:
        raise InputError(
            "nlsq: the config frees parameters that no data can determine: "
            + "; ".join(undetermined)
            + ". Fix one of each in nlsq.fixed"
        )
    if dof <= 0:
        raise InputError(
            f"dataset: {int(counts.sum())} valid pairs cannot determine {n_p} free "
            f"parameters; use more frames or fix parameters with nlsq.fixed"
        )
    template = jnp.asarray(settings.initial)
    free_index = jnp.asarray(free, dtype=jnp.int32)
    chunk = chunk_pairs(settings.jacobian_budget_bytes, n_phi, n_p, n_pairs)
    chunked, estimate = over_budget(
        n_phi * n_pairs,
        n_free,
        settings.jacobian_budget_bytes,
        "Jacobian",
        f"accumulating J^T J and J^T r in chunks of {chunk} pairs x {n_phi} angles instead",
    )
    if chunked:
        system = CompressedGaussNewton(template, free_index, problem, chunk, shared)
        residuals, jacobian = system.residuals, system.jacobian
    else:
        log.info(
            "Jacobian in memory: %d residuals x %d free parameters (%.0f MiB)",
            n_phi * n_pairs,
            n_free,
            estimate / 2**20,
        )

        def residuals(x):
            return residuals_jit(jnp.asarray(x), template, free_index, problem, shared)

        def jacobian(x):
            return jacobian_jit(jnp.asarray(x), template, free_index, problem, shared)

    lower, upper = settings.lower[free], settings.upper[free]
    starts = [settings.initial[free]]
    if settings.n_starts:
        starts += list(latin_hypercube_starts(lower, upper, settings.n_starts, settings.seed))
    best = best_of_starts(residuals, jacobian, starts, lower, upper, settings, settings.free_names)
    if best is None or not np.all(np.isfinite(best.x)):
        raise FitFailed("no start gave finite residuals, chi2 and parameters")
    mirror = exchange_restart(best.x, settings, np.asarray(problem.t))
    other = None  # the loser of best and the restart from the exchanged components
    if mirror is not None and np.all(np.isfinite(np.asarray(residuals(mirror)))):
        outcome = solve(residuals, jacobian, mirror, lower, upper, settings)
        log.info(
            "start from the exchanged components: chi2 = %.6g (best so far %.6g), %s",
            2 * outcome.cost,
            2 * best.cost,
            outcome.message,
        )
        if np.isfinite(outcome.cost):
            best, other = (outcome, best) if outcome.cost < best.cost else (best, outcome)

    t_mean = float(np.mean(problem.t))
    best = best._replace(x=canonical_solution(best.x, settings, t_mean))
    p = expanded_parameters(best.x, template, free_index, problem, chunk, shared)
    m, _, chi2_per_angle = (np.asarray(a) for a in normal_equations(p, template, free_index, problem, chunk, shared))
    chi2 = float(chi2_per_angle.sum())
    if not (np.isfinite(chi2) and np.all(np.isfinite(m))):
        raise FitFailed(f"chi2 = {chi2} or its Jacobian is not finite at the solution")
    theta = np.asarray(full_theta(jnp.asarray(best.x), template, free_index))
    sandwich = noise is not None and any(angle.model == "speckle" for angle in noise)
    scores = None
    repeat = np.zeros(n_phi, dtype=int) if shared else np.arange(n_phi)
    if sandwich:
        scaling = np.asarray(p)[n_free:].reshape(2, n_s)[:, repeat]
        scores = score_covariance(
            best.x, scaling[0], scaling[1], theta, template, free_index, problem, chunk, shared, noise
        )
    names = settings.free_names + _scaling_names(n_phi, shared)
    cov_fields, se, unresolved = covariance_fields(m, chi2, dof, scores, names)
    stderr_scaling = STDERR_SANDWICH if sandwich else STDERR_SCALING
    solver = solver_stats(best, unresolved, started, stderr_scaling, chunked, len(starts) + (mirror is not None))
    p = np.asarray(p)
    theta_stderr = np.full(len(PARAMETER_NAMES), np.nan)
    theta_stderr[free] = se[:n_free]
    at_bound = np.zeros(len(PARAMETER_NAMES), dtype=bool)
    span = settings.upper - settings.lower
    at_bound[free] = (theta[free] - settings.lower[free] <= 1e-8 * span[free]) | (
        settings.upper[free] - theta[free] <= 1e-8 * span[free]
    )
    exchanged = None
    if other is not None:
        exchanged = other_optimum(other.x, best.x, se[:n_free], settings, t_mean, 2 * (other.cost - best.cost))
        if exchanged is not None:
            log.warning("the exchanged components reach another optimum, chi2 higher by %.4g", exchanged["delta_chi2"])
    scaling = p[n_free:].reshape(2, n_s)
    scaling_se = se[n_free:].reshape(2, n_s)
    dof_per_angle = counts * dof / counts.sum()
    return NlsqFit(
        theta=theta,
        theta_stderr=theta_stderr,
        free_names=settings.free_names,
        contrast=scaling[0][repeat],
        contrast_stderr=scaling_se[0][repeat],
        offset=scaling[1][repeat],
        offset_stderr=scaling_se[1][repeat],
        **cov_fields,
        chi2=chi2,
        chi2_per_angle=chi2_per_angle,
        n_valid_per_angle=counts,
        dof=dof,
        reduced_chi2=chi2 / dof,
        reduced_chi2_per_angle=chi2_per_angle / dof_per_angle,
        at_bound=at_bound,
        solver=solver,
        exchanged_optimum=exchanged,
    )
