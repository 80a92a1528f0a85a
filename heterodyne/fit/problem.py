"""The fitted quantity: sigma-weighted residuals of every valid pair t1 < t2 at every angle.

For angle a (phi_a, deg) and pair k = (i_k < j_k) of the time grid:

    r_ak = w_ak (c_a B_a(t_i, t_j; theta) + o_a - c2_data,a[i_k, j_k]),   w_ak = valid_ak / sigma_ak,

with B the normalised bracket of :mod:`heterodyne.core.physics` (c2 = offset +
contrast * B), theta the 14 physics parameters, sigma_ak [c2 units] the element's noise sd from
the weighting step's noise model, and w = 0 for masked pairs (so they add nothing). The diagonal is never used.
chi^2 = sum_ak r_ak^2 (dimensionless).

Contrast c and offset o enter linearly, so for each theta they are solved exactly
(variable projection): minimise Q(c, o) = sum_k w_k^2 (c B_k + o - d_k)^2 over the box
SCALING_BOUNDS, per angle or once for all angles (``shared``).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.core.c2 import c2_meshgrid, c2_pairs
from heterodyne.core.parameters import SCALING_BOUNDS
from heterodyne.errors import InputError
from heterodyne.weighting.weights_file import check_weights_for


class FitProblem(NamedTuple):
    """Arrays of one fit (a JAX pytree, so one compiled function serves every problem of the
    same shape).

    t (N,) s; q (1/A) and dt (s) as 0-d arrays; phi (n_phi,) deg; rows, cols (n_pairs,) the
    pairs i < j in row-major order; data (n_phi, n_pairs) c2 values there (0 where masked);
    weight (n_phi, n_pairs) = valid / sigma_ak [1/c2 units].
    """

    t: jax.Array
    q: jax.Array
    dt: jax.Array
    phi: jax.Array
    rows: jax.Array
    cols: jax.Array
    data: jax.Array
    weight: jax.Array


def build_problem(dataset, weights, weights_path="weights file"):
    """FitProblem from a :class:`~heterodyne.data.dataset.Dataset` and
    :class:`~heterodyne.weighting.weights_file.AngleWeights` of the same angles."""
    check_weights_for(dataset, weights, weights_path)
    phi = np.asarray(dataset.phi, dtype=np.float64)
    n = len(dataset.t)
    if n < 3:
        raise InputError(
            f"dataset {dataset.source_path}: {n} time points; the fit needs at least 3 "
            f"(widen 'frames' in the dataset config)"
        )
    rows, cols = np.triu_indices(n, k=1)
    valid = np.asarray(dataset.valid, dtype=bool)[:, rows, cols]
    data = np.asarray(dataset.c2, dtype=np.float64)[:, rows, cols]
    if not np.all(np.isfinite(data[valid])):
        raise InputError(
            f"dataset {dataset.source_path}: c2 is not finite at elements marked valid; re-run `heterodyne ingest`"
        )
    empty = [float(p) for p, v in zip(phi, valid.sum(axis=1), strict=True) if v < 3]
    if empty:
        raise InputError(
            f"dataset {dataset.source_path}: fewer than 3 valid pairs at phi = {empty} deg; "
            f"drop those angles from 'phi' in the dataset config"
        )
    return FitProblem(
        t=jnp.asarray(dataset.t, dtype=jnp.float64),
        q=jnp.asarray(float(dataset.q)),
        dt=jnp.asarray(float(dataset.dt)),
        phi=jnp.asarray(phi),
        rows=jnp.asarray(rows, dtype=jnp.int32),
        cols=jnp.asarray(cols, dtype=jnp.int32),
        data=jnp.asarray(np.where(valid, data, 0.0)),
        weight=jnp.asarray(valid / weights.pair_sigma(rows, cols)),
    )


def n_valid(problem):
    """Number of valid (fitted) pairs at each angle, (n_phi,) int."""
    return np.asarray(problem.weight > 0).sum(axis=1)


def full_theta(x_free, template, free_index):
    """The 14-vector: ``template`` with entries ``free_index`` replaced by ``x_free``."""
    return template.at[free_index].set(x_free)


def meshgrid_brackets(theta, problem):
    """B_a(t_i, t_j) at every pair of ``problem`` for every angle, from the full N x N meshgrid
    evaluation (contrast 1, offset 0): (n_phi, n_pairs)."""
    n_phi = problem.phi.shape[0]
    grid = c2_meshgrid(theta, problem.t, problem.q, problem.dt, problem.phi, jnp.ones(n_phi), jnp.zeros(n_phi))
    return grid[:, problem.rows, problem.cols]


def pair_brackets(theta, problem, rows, cols):
    """B_a at the pairs (rows[k], cols[k]) only, for every angle: (n_phi, n_pairs). Same physics
    as :func:`meshgrid_brackets` without the N x N grid (used on chunks)."""
    n_phi = problem.phi.shape[0]
    return c2_pairs(theta, problem.t, problem.q, problem.dt, problem.phi, rows, cols, jnp.ones(n_phi), jnp.zeros(n_phi))


def scaling_sums(brackets, data, weight):
    """Per-angle weighted moments for the linear solve, (n_phi, 6):
    [sum w^2, sum w^2 B, sum w^2 B^2, sum w^2 d, sum w^2 B d, sum w^2 d^2]."""
    w2 = weight * weight
    return jnp.stack(
        [
            w2.sum(-1),
            (w2 * brackets).sum(-1),
            (w2 * brackets**2).sum(-1),
            (w2 * data).sum(-1),
            (w2 * brackets * data).sum(-1),
            (w2 * data**2).sum(-1),
        ],
        axis=-1,
    )


def _box_least_squares(s):
    """Minimiser of Q(c, o) = c^2 S_BB + 2 c o S_B + o^2 S_1 - 2 c S_Bd - 2 o S_d + S_dd on the
    box SCALING_BOUNDS, from the moments ``s`` (..., 6).

    Q is convex, so the minimiser is the unconstrained one if it lies in the box, otherwise the
    best of the four edge minimisers (each the 1-D optimum clipped to its edge)."""
    s1, sb, sbb, sd, sbd, sdd = (s[..., k] for k in range(6))
    (c_lo, c_hi), (o_lo, o_hi) = SCALING_BOUNDS["contrast"], SCALING_BOUNDS["offset"]
    tiny = 1e-300

    def q(c, o):
        return c * c * sbb + 2 * c * o * sb + o * o * s1 - 2 * c * sbd - 2 * o * sd + sdd

    det = s1 * sbb - sb * sb
    c_free = (s1 * sbd - sb * sd) / jnp.maximum(det, tiny)
    o_free = (sbb * sd - sb * sbd) / jnp.maximum(det, tiny)
    inside = (det > tiny) & (c_free >= c_lo) & (c_free <= c_hi) & (o_free >= o_lo) & (o_free <= o_hi)
    cands = []
    for c_edge in (c_lo, c_hi):
        cands.append((jnp.full_like(s1, c_edge), jnp.clip((sd - c_edge * sb) / jnp.maximum(s1, tiny), o_lo, o_hi)))
    for o_edge in (o_lo, o_hi):
        cands.append((jnp.clip((sbd - o_edge * sb) / jnp.maximum(sbb, tiny), c_lo, c_hi), jnp.full_like(s1, o_edge)))
    c_best, o_best = cands[0]
    for c, o in cands[1:]:
        better = q(c, o) < q(c_best, o_best)
        c_best, o_best = jnp.where(better, c, c_best), jnp.where(better, o, o_best)
    return jnp.where(inside, c_free, c_best), jnp.where(inside, o_free, o_best)


def optimal_scaling(sums, shared):
    """Contrast and offset per angle, (n_phi,) each, minimising chi^2 for fixed brackets; with
    ``shared`` one pair (c, o) for all angles (moments summed over angles), repeated."""
    if shared:
        c, o = _box_least_squares(sums.sum(axis=0))
        return jnp.full(sums.shape[0], c), jnp.full(sums.shape[0], o)
    return _box_least_squares(sums)


def projected_residuals(x_free, template, free_index, problem, shared):
    """Variable-projection residuals r_ak (flattened angle by angle, (n_phi * n_pairs,)) with
    contrast/offset at their optimum for theta = full_theta(x_free)."""
    theta = full_theta(x_free, template, free_index)
    brackets = meshgrid_brackets(theta, problem)
    c, o = optimal_scaling(scaling_sums(brackets, problem.data, problem.weight), shared)
    return (problem.weight * (c[:, None] * brackets + o[:, None] - problem.data)).ravel()


#: jitted residuals and their forward-mode Jacobian d r / d x_free, (n_phi * n_pairs, n_free);
#: data travel as arguments, so one compilation serves all problems of one shape
residuals_jit = jax.jit(projected_residuals, static_argnames=("shared",))
jacobian_jit = jax.jit(jax.jacfwd(projected_residuals), static_argnames=("shared",))
