"""One NLSQ fit over all q bins of a dataset: shared physics, per-q fractions, per-map scaling.

Model. Bin b (q_b [1/A], angles phi_ba [deg]) has the residuals of
:mod:`heterodyne.fit.problem`,

    r_bak = w_bak (c_ba B(t_i, t_j; theta_b, q_b, phi_ba) + o_ba - c2_data,ba[i_k, j_k]),

with theta_b the 14-vector of bin b: the shared transport/velocity parameters (D0, alpha,
D_offset of both components, v0, beta, v_offset, phi0) are one set for all bins, the free sample
fractions (those of f0..f3 free in the nlsq section) are fitted per bin, and the contrast c_ba and
offset o_ba of every (q, phi) map are solved exactly inside each residual evaluation by the same
variable projection as the per-q fit (``scaling: shared`` means one pair per q bin). The joint
vector x and its names (``f0@q0.005`` for a bin's fraction) are laid out by
:mod:`heterodyne.fit.joint_q_layout`. chi2 = sum_b sum_a sum_k r_bak^2 (dimensionless) is
minimised over x by the same TRF solver (:func:`heterodyne.fit.nlsq_solver.solve`), from the same
starts (configured start, Latin-hypercube starts, exchanged-components restart) as
:func:`heterodyne.fit.joint_fit.fit_joint`.

Residuals and Jacobian. In memory (estimated stacked Jacobian sum_b n_phi_b n_pairs_b n_joint 8
bytes within ``nlsq.jacobian_memory_mb``): the per-bin projected residuals
(:data:`~heterodyne.fit.problem.residuals_jit`) are stacked and each bin's Jacobian
(:data:`~heterodyne.fit.problem.jacobian_jit`, columns = its local free parameters) is placed in
the joint columns ``index[b]``. Above the budget nothing of size n_pairs is held: per bin the
chunked normal equations (:data:`~heterodyne.fit.uncertainty.normal_equations`) give the Schur
complement S_b of its own contrast/offset (Kaufman's variable projection, as in the per-q
memory-bounded mode), the joint Gauss-Newton matrix is S = sum_b P_b^T S_b P_b (P_b the column
map of bin b) and the gradient g = sum_b P_b^T g_b, presented to the solver as the small
equivalent system J_eff = [S^1/2; 0], f_eff = [S^-1/2 g; rest] with |f_eff|^2 = chi2.

Uncertainties. The expanded parameters p = [x (n_joint), then per bin contrast (n_s), offset
(n_s)]: M = J^T J is assembled from each bin's normal matrix (bins share only the shared
columns), and C = M^-1 chi2 / dof with the joint chi2 and dof = n_valid - n_joint - sum_b 2 n_s_b
(:func:`heterodyne.fit.uncertainty.covariance`): one reduced chi2 over all bins, where the per-q
fit scales by its own. Where an angle of any bin has the speckle noise model the sandwich
M^-1 S M^-1 chi2 / dof is used, S assembled from each bin's score covariance
(:func:`heterodyne.fit.speckle_covariance.score_covariance`; J_b^T J_b for bins without a noise
model), exactly as the per-q fit does for one bin; ``stderr_scaling`` names the estimator.

Goodness of fit: reduced chi2 = chi2 / dof; per bin chi2_b / (dof n_b / n_valid) and per map
chi2_ba / (dof n_ba / n_valid) (the dof shared out in proportion to the valid pairs).

phi0: with one angle, phi0 and v0 enter c2 only as v0 cos(phi + phi0); bins with several angles
identify phi0, so it is held (:func:`hold_for_bins`) only when every bin has a single angle.
"""

import logging
import time
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from heterodyne.core.parameters import PARAMETER_NAMES
from heterodyne.errors import InputError
from heterodyne.fit.identifiability import undetermined_combinations
from heterodyne.fit.joint_fit import (
    CachedSystem,
    FitFailed,
    equivalent_system,
    expanded_parameters,
    schur_complement,
)
from heterodyne.fit.joint_q_layout import bin_theta, canonical_joint, exchange_restart_joint, joint_layout, per_q_name
from heterodyne.fit.multistart import latin_hypercube_starts
from heterodyne.fit.nlsq_solver import SolverStats, best_of_starts, solver_stats
from heterodyne.fit.problem import jacobian_jit, n_valid, residuals_jit
from heterodyne.fit.settings import hold_for_angle_count
from heterodyne.fit.speckle_covariance import score_covariance
from heterodyne.fit.uncertainty import (
    STDERR_SANDWICH,
    STDERR_SCALING,
    chunk_pairs,
    covariance_fields,
    normal_equations,
    over_budget,
)

log = logging.getLogger(__name__)

#: appended to the per-q estimator's description in ``stderr_scaling``
JOINT_NOTE = (
    "; joint over the q bins: one covariance over the shared parameters, every bin's free "
    "fractions and every map's contrast/offset, scaled by one reduced chi2 over all bins"
)


class QBinProblem(NamedTuple):
    """One q bin of the joint fit: results ``folder`` name, ``q`` [1/A], its
    :class:`~heterodyne.fit.problem.FitProblem` and its angles' noise models (the weights'
    ``noise``, or None for a constant sigma per angle)."""

    folder: str
    q: float
    problem: object
    noise: tuple | None


class JointQFit(NamedTuple):
    """Result of :func:`fit_joint_q`.

    names (n_joint,) joint free names; x, x_stderr, x_at_bound (n_joint,); folders, q (n_q,);
    thetas, theta_stderr (n_q, 14) every bin's full parameter vector (stderr NaN where fixed);
    contrast, contrast_stderr, offset, offset_stderr, chi2_per_angle, n_valid_per_angle,
    reduced_chi2_per_angle: lists of n_q arrays (n_phi_b,); chi2_per_q, reduced_chi2_per_q,
    n_valid_per_q (n_q,); covariance, covariance_independent (n_p, n_p) over covariance_names
    (joint names, then per bin ``contrast_a@folder`` and ``offset_a@folder``); correlation likewise;
    chi2, dof, reduced_chi2; solver (:class:`~heterodyne.fit.nlsq_solver.SolverStats`; its
    undetermined: covariance names without a standard error)."""

    names: list
    x: np.ndarray
    x_stderr: np.ndarray
    x_at_bound: np.ndarray
    folders: list
    q: np.ndarray
    thetas: np.ndarray
    theta_stderr: np.ndarray
    contrast: list
    contrast_stderr: list
    offset: list
    offset_stderr: list
    chi2_per_angle: list
    n_valid_per_angle: list
    reduced_chi2_per_angle: list
    chi2_per_q: np.ndarray
    reduced_chi2_per_q: np.ndarray
    n_valid_per_q: np.ndarray
    covariance: np.ndarray
    covariance_independent: np.ndarray
    covariance_names: list
    correlation: np.ndarray
    chi2: float
    dof: int
    reduced_chi2: float
    solver: SolverStats


def hold_for_bins(settings, n_angles):
    """(settings, held) as :func:`~heterodyne.fit.settings.hold_for_angle_count` for the largest
    angle count of the bins ``n_angles``: phi0 is held only when every bin has one angle."""
    return hold_for_angle_count(settings, max(n_angles))


class _Context(NamedTuple):
    """What every evaluation needs: bins, layout, template (14,), free_index, chunks, shared."""

    bins: list
    layout: object
    template: object
    free_index: object
    chunks: list
    shared: bool


class StackedSystem:
    """In-memory residuals (sum_b n_phi_b n_pairs_b,) and Jacobian (..., n_joint) of the joint
    vector: the bins' projected residuals stacked, each bin's Jacobian in its joint columns."""

    def __init__(self, ctx):
        self._ctx = ctx

    def residuals(self, x):
        ctx = self._ctx
        return np.concatenate(
            [
                np.asarray(
                    residuals_jit(
                        jnp.asarray(ctx.layout.local(x, b)), ctx.template, ctx.free_index, item.problem, ctx.shared
                    )
                )
                for b, item in enumerate(ctx.bins)
            ]
        )

    def jacobian(self, x):
        ctx = self._ctx
        blocks = []
        for b, item in enumerate(ctx.bins):
            local = np.asarray(
                jacobian_jit(
                    jnp.asarray(ctx.layout.local(x, b)), ctx.template, ctx.free_index, item.problem, ctx.shared
                )
            )
            block = np.zeros((local.shape[0], len(ctx.layout.names)))
            block[:, ctx.layout.index[b]] = local
            blocks.append(block)
        return np.vstack(blocks)


class CompressedJointSystem(CachedSystem):
    """Memory-bounded residuals (n_joint + 1,) and Jacobian (n_joint + 1, n_joint) with the same
    Gauss-Newton matrix, gradient and chi2 as the stacked ones (see the module docstring)."""

    def __init__(self, ctx):
        self._ctx = ctx

    def _system(self, x):
        ctx = self._ctx
        n_joint, nf = len(ctx.layout.names), len(ctx.layout.local_names)
        schur, grad, chi2 = np.zeros((n_joint, n_joint)), np.zeros(n_joint), 0.0
        for b, item in enumerate(ctx.bins):
            local = jnp.asarray(ctx.layout.local(x, b))
            p = expanded_parameters(local, ctx.template, ctx.free_index, item.problem, ctx.chunks[b], ctx.shared)
            m, g, chi2_b = (
                np.asarray(a)
                for a in normal_equations(p, ctx.template, ctx.free_index, item.problem, ctx.chunks[b], ctx.shared)
            )
            at = ctx.layout.index[b]
            schur[np.ix_(at, at)] += schur_complement(m, nf)
            grad[at] += g[:nf]
            chi2 += float(chi2_b.sum())
        return equivalent_system(schur, grad, chi2)


def scaling_names(folder, n_phi, shared):
    """Contrast/offset names of one bin in the covariance: ``contrast_a@folder`` ... ``offset_a@folder``
    (``contrast@folder``, ``offset@folder`` when shared)."""
    if shared:
        return [per_q_name("contrast", folder), per_q_name("offset", folder)]
    return [per_q_name(f"contrast_{a}", folder) for a in range(n_phi)] + [
        per_q_name(f"offset_{a}", folder) for a in range(n_phi)
    ]


def _check_determined(layout, settings, n_angles, n_total, n_p):
    undetermined = undetermined_combinations(layout.local_names, settings.initial, max(n_angles))
    if undetermined:
        raise InputError(
            "nlsq: the config frees parameters that no data can determine: "
            + "; ".join(undetermined)
            + ". Fix one of each in nlsq.fixed"
        )
    if n_total - n_p <= 0:
        raise InputError(
            f"datasets: {n_total} valid pairs over all q bins cannot determine {n_p} free "
            "parameters; use more frames or fix parameters with nlsq.fixed"
        )


def fit_joint_q(bins, settings):
    """Fit the q bins ``bins`` (list of :class:`QBinProblem`, distinct folders) jointly with
    ``settings`` (:class:`~heterodyne.fit.settings.FitSettings`, after :func:`hold_for_bins`);
    returns :class:`JointQFit`."""
    started = time.perf_counter()
    shared = settings.shared_scaling
    layout = joint_layout(settings, [item.folder for item in bins])
    nf, n_joint = len(layout.local_names), len(layout.names)
    n_angles = [int(item.problem.phi.shape[0]) for item in bins]
    n_pairs = [int(item.problem.rows.shape[0]) for item in bins]
    n_s = [1 if shared else n for n in n_angles]
    n_p = n_joint + 2 * sum(n_s)
    counts = [n_valid(item.problem) for item in bins]
    n_total = int(sum(c.sum() for c in counts))
    _check_determined(layout, settings, n_angles, n_total, n_p)
    dof = n_total - n_p
    chunks = [
        chunk_pairs(settings.jacobian_budget_bytes, n_angles[b], nf + 2 * n_s[b], n_pairs[b]) for b in range(len(bins))
    ]
    ctx = _Context(
        bins=list(bins),
        layout=layout,
        template=jnp.asarray(settings.initial),
        free_index=jnp.asarray(np.asarray(settings.free), dtype=jnp.int32),
        chunks=chunks,
        shared=shared,
    )
    chunked = over_budget(
        sum(a * p for a, p in zip(n_angles, n_pairs, strict=True)),
        n_joint,
        settings.jacobian_budget_bytes,
        "joint Jacobian",
        "per-bin normal equations in chunks instead",
    )[0]
    system = CompressedJointSystem(ctx) if chunked else StackedSystem(ctx)

    free = np.asarray(settings.free)
    lower = layout.joint_from_local([settings.lower[free]] * len(bins))
    upper = layout.joint_from_local([settings.upper[free]] * len(bins))
    starts = [layout.joint_from_local([settings.initial[free]] * len(bins))]
    if settings.n_starts:
        starts += list(latin_hypercube_starts(lower, upper, settings.n_starts, settings.seed))
    best = best_of_starts(system.residuals, system.jacobian, starts, lower, upper, settings, layout.names)
    if best is None or not np.all(np.isfinite(best.x)):
        raise FitFailed("no start gave finite residuals, chi2 and parameters")
    grids = [np.asarray(item.problem.t) for item in bins]
    mirror = exchange_restart_joint(best.x, layout, settings, grids)
    if mirror is not None:
        outcome = best_of_starts(system.residuals, system.jacobian, [mirror], lower, upper, settings, layout.names)
        if outcome is not None and outcome.cost < best.cost:
            log.info("the exchanged-components start wins: chi2 = %.6g (was %.6g)", 2 * outcome.cost, 2 * best.cost)
            best = outcome
    best = best._replace(x=canonical_joint(best.x, layout, settings, [float(np.mean(t)) for t in grids]))
    stats, stderr_scaling, undetermined = _statistics(best.x, ctx, settings, n_s, dof, counts)
    solver = solver_stats(best, undetermined, started, stderr_scaling, chunked, len(starts) + (mirror is not None))
    span = upper - lower
    at_bound = (best.x - lower <= 1e-8 * span) | (upper - best.x <= 1e-8 * span)
    return JointQFit(
        names=layout.names,
        x=np.asarray(best.x),
        x_at_bound=at_bound,
        folders=layout.folders,
        q=np.array([item.q for item in bins], dtype=np.float64),
        solver=solver,
        **stats,
    )


def _statistics(x, ctx, settings, n_s, dof, counts):
    """(fields, stderr_scaling, undetermined) at the solution ``x``: fields the JointQFit fields
    not about the solver (covariance, standard errors, scaling, goodness of fit)."""
    layout, shared, free = ctx.layout, ctx.shared, np.asarray(settings.free)
    nf, n_joint = len(layout.local_names), len(layout.names)
    n_p = n_joint + 2 * sum(n_s)
    sandwich = any(item.noise is not None and any(a.model == "speckle" for a in item.noise) for item in ctx.bins)
    m_joint, scores = np.zeros((n_p, n_p)), np.zeros((n_p, n_p)) if sandwich else None
    thetas, chi2_per_angle, scaling, names = [], [], [], list(layout.names)
    for b, item in enumerate(ctx.bins):
        local = jnp.asarray(layout.local(x, b))
        p = expanded_parameters(local, ctx.template, ctx.free_index, item.problem, ctx.chunks[b], shared)
        m, _, chi2_b = (
            np.asarray(a)
            for a in normal_equations(p, ctx.template, ctx.free_index, item.problem, ctx.chunks[b], shared)
        )
        if not (np.all(np.isfinite(chi2_b)) and np.all(np.isfinite(m))):
            raise FitFailed(f"chi2 or its Jacobian is not finite at the solution (q bin {item.folder})")
        at = np.ix_(*(2 * [layout.per_bin_expanded(b, n_s)]))
        m_joint[at] += m
        theta = bin_theta(x, layout, settings, b)
        n_phi = int(item.problem.phi.shape[0])
        repeat = np.zeros(n_phi, dtype=int) if shared else np.arange(n_phi)
        pair = np.asarray(p)[nf:].reshape(2, n_s[b])[:, repeat]
        if sandwich:
            scores[at] += (
                m
                if item.noise is None
                else score_covariance(
                    np.asarray(local),
                    pair[0],
                    pair[1],
                    theta,
                    ctx.template,
                    ctx.free_index,
                    item.problem,
                    ctx.chunks[b],
                    shared,
                    item.noise,
                )
            )
        thetas.append(theta)
        chi2_per_angle.append(chi2_b)
        scaling.append((pair, repeat))
        names += scaling_names(item.folder, n_phi, shared)
    chi2 = float(sum(c.sum() for c in chi2_per_angle))
    cov_fields, se, undetermined = covariance_fields(m_joint, chi2, dof, scores, names)
    theta_stderr = np.full((len(ctx.bins), len(PARAMETER_NAMES)), np.nan)
    contrast_se, offset_se = [], []
    start = n_joint
    for b, (_, repeat) in enumerate(scaling):
        theta_stderr[b, free] = se[layout.index[b]]
        block = se[start : start + 2 * n_s[b]].reshape(2, n_s[b])[:, repeat]
        contrast_se.append(block[0])
        offset_se.append(block[1])
        start += 2 * n_s[b]
    n_total = sum(c.sum() for c in counts)
    chi2_q = np.array([c.sum() for c in chi2_per_angle])
    n_q = np.array([c.sum() for c in counts])
    fields = dict(
        x_stderr=se[:n_joint],
        thetas=np.stack(thetas),
        theta_stderr=theta_stderr,
        contrast=[pair[0] for pair, _ in scaling],
        contrast_stderr=contrast_se,
        offset=[pair[1] for pair, _ in scaling],
        offset_stderr=offset_se,
        chi2_per_angle=chi2_per_angle,
        n_valid_per_angle=counts,
        reduced_chi2_per_angle=[c2 / (dof * c / n_total) for c2, c in zip(chi2_per_angle, counts, strict=True)],
        chi2_per_q=chi2_q,
        reduced_chi2_per_q=chi2_q / (dof * n_q / n_total),
        n_valid_per_q=n_q,
        **cov_fields,
        chi2=chi2,
        dof=int(dof),
        reduced_chi2=chi2 / dof,
    )
    stderr_scaling = (STDERR_SANDWICH if sandwich else STDERR_SCALING) + JOINT_NOTE
    return fields, stderr_scaling, undetermined
