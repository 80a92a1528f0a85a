"""``compute_c2_unified``: public API compatible with heterodyne 2.0.1 (one entry point, three
evaluation strategies). The package itself calls the kernels of :mod:`heterodyne.core.c2`
directly; this dispatcher forwards to them (formulas in :mod:`heterodyne.core.physics`).
"""

from functools import partial

import jax

from heterodyne.core.c2 import c2_map, c2_pooled
from heterodyne.core.physics_cmc import compute_c2_elementwise


@partial(jax.jit, static_argnames=("eval_strategy",))
def compute_c2_unified(
    params,
    q,
    dt,
    phi_angle=0.0,
    contrast=1.0,
    offset=1.0,
    *,
    eval_strategy,
    t=None,
    shard_grid=None,
    time_grid=None,
    idx1=None,
    idx2=None,
    phi_unique=None,
    phi_indices=None,
    contrast_arr=None,
    offset_arr=None,
):
    """c2 of the heterodyne model by one of three evaluation strategies (q in 1/A, dt in s,
    angles in degrees).

    * ``"meshgrid"``: needs ``t`` (N,); returns (N, N) at ``phi_angle`` with scalar
      ``contrast``/``offset`` (:func:`~heterodyne.core.c2.c2_map`).
    * ``"elementwise"``: needs ``shard_grid`` (time_grid, idx1, idx2); returns (n_pairs,) at
      ``phi_angle`` (:func:`~heterodyne.core.physics_cmc.compute_c2_elementwise`).
    * ``"pooled"``: needs ``time_grid``, ``idx1``, ``idx2``, ``phi_indices`` (n_total,) and
      ``phi_unique``, ``contrast_arr``, ``offset_arr`` (n_phi,); returns (n_total,) with
      c2[k] at phi_unique[phi_indices[k]], t1 = time_grid[idx1[k]], t2 = time_grid[idx2[k]]
      (:func:`~heterodyne.core.c2.c2_pooled`). ``phi_angle``, ``contrast`` and ``offset`` are
      ignored.
    """
    if eval_strategy == "meshgrid":
        if t is None:
            raise ValueError("eval_strategy='meshgrid' needs t")
        return c2_map(params, t, q, dt, phi_angle, contrast, offset)
    if eval_strategy == "elementwise":
        if shard_grid is None:
            raise ValueError("eval_strategy='elementwise' needs shard_grid")
        return compute_c2_elementwise(params, shard_grid, q, dt, phi_angle, contrast, offset)
    if eval_strategy == "pooled":
        needed = {
            "time_grid": time_grid,
            "idx1": idx1,
            "idx2": idx2,
            "phi_unique": phi_unique,
            "phi_indices": phi_indices,
            "contrast_arr": contrast_arr,
            "offset_arr": offset_arr,
        }
        missing = [name for name, value in needed.items() if value is None]
        if missing:
            raise ValueError(f"eval_strategy='pooled' needs {', '.join(missing)}")
        return c2_pooled(params, time_grid, q, dt, phi_unique, phi_indices, idx1, idx2, contrast_arr, offset_arr)
    raise ValueError(f"eval_strategy must be 'meshgrid', 'elementwise' or 'pooled', got {eval_strategy!r}")
