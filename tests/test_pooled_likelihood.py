"""pooled_sums (hand-written gradient) against autodiff of the reference pooled path
(heterodyne.core.c2.c2_pooled with contrast 1 and offset 0, summed per angle): the sums and the
gradient of a cotangent-weighted sum with respect to every differentiable argument."""

import jax
import jax.numpy as jnp
import numpy as np
import physics_fixtures
import pytest

from heterodyne.core.c2 import c2_pooled
from heterodyne.core.parameters import PARAMETER_NAMES, as_vector
from heterodyne.core.pooled_likelihood import pooled_sums, prepare_points

N, Q, DT = 40, 0.012, 0.1
PHI = np.array([-20.0, 35.0, 80.0])
SMOOTH = as_vector(physics_fixtures.SMOOTH)
# t starts at 0 (t^a := 0), J_ref = max(., 0) vanishes on early times (C_ref flat there), x_s clips at 1
KINKED = as_vector(
    dict(
        D0_ref=300.0,
        alpha_ref=1.2,
        D_offset_ref=-200.0,
        D0_sample=900.0,
        alpha_sample=0.7,
        D_offset_sample=-50.0,
        v0=80.0,
        beta=-0.4,
        v_offset=-3.0,
        f0=0.2,
        f1=0.9,
        f2=1.0,
        f3=0.05,
        phi0=-25.0,
    )
)
FLOAT_ARGS = (0, 1, 2, 3, 4)  # params, t, q, dt, phi_unique
#: a cotangent of the (n_phi, 3) sums: the gradient check covers every angle and every sum
COTANGENT = np.random.default_rng(7).normal(size=(len(PHI), 3))


def shard(seed, fraction=0.5):
    """A random half of the upper triangles of the 3 angles, plus 37 weight-0 padding copies."""
    rng = np.random.default_rng(seed)
    i, j = np.triu_indices(N, k=1)
    a, i, j = np.repeat(np.arange(3), len(i)), np.tile(i, 3), np.tile(j, 3)
    keep = rng.permutation(len(i))[: int(fraction * len(i))]
    pad = np.zeros(37, dtype=int)
    phi_index, idx1, idx2 = (np.concatenate([x[keep], x[keep][pad]]) for x in (a, i, j))
    c2 = rng.normal(1.1, 0.02, len(phi_index))
    weight = np.concatenate([rng.uniform(2e3, 1e4, len(keep)), np.zeros(37)])
    return phi_index, idx1, idx2, c2, weight


def reference_sums(params, t, q, dt, phi_unique, points, c2, weight):
    phi_index, idx1, idx2 = points
    bracket = c2_pooled(params, t, q, dt, phi_unique, phi_index, idx1, idx2, jnp.ones(len(PHI)), jnp.zeros(len(PHI)))
    wb = weight * bracket
    return jnp.stack([jax.ops.segment_sum(x, phi_index, len(PHI)) for x in (wb, wb * bracket, wb * c2)], axis=-1)


def weighted(sums_function, **options):
    return jax.jit(
        jax.value_and_grad(lambda *args: jnp.sum(COTANGENT * sums_function(*args, **options)), argnums=FLOAT_ARGS)
    )


reference = weighted(reference_sums)


@pytest.mark.parametrize("params, t0", [(SMOOTH, 0.5), (KINKED, 0.0)], ids=["smooth", "kinked"])
@pytest.mark.parametrize("chunk", [256, 4096], ids=["scan+tail", "tail only"])
def test_sums_and_every_gradient_match_reference_autodiff(params, t0, chunk):
    phi_index, idx1, idx2, c2, weight = shard(seed=1)
    t = t0 + DT * np.arange(N)
    common = (params, t, Q, DT, PHI)
    points = prepare_points(phi_index, idx1, idx2, N, len(PHI))
    np.testing.assert_allclose(
        pooled_sums(*common, points, c2, weight, chunk=chunk),
        reference_sums(*common, (phi_index, idx1, idx2), c2, weight),
        rtol=1e-12,
    )
    value, grads = reference(*common, (phi_index, idx1, idx2), c2, weight)
    got_value, got_grads = weighted(pooled_sums, chunk=chunk)(*common, points, c2, weight)
    np.testing.assert_allclose(got_value, value, rtol=1e-12)
    names = ("params", "t", "q", "dt", "phi_unique")
    for name, got, expected in zip(names, got_grads, grads, strict=True):
        got, expected = np.atleast_1d(got), np.atleast_1d(expected)
        if name == "params":  # each parameter on its own scale (they differ by many decades)
            for k, param in enumerate(PARAMETER_NAMES):
                np.testing.assert_allclose(got[k], expected[k], rtol=1e-11, err_msg=param)
        else:  # per-time arrays: near-zero entries are compared on the array's scale
            np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12 * np.abs(expected).max(), err_msg=name)
    assert np.all(np.asarray(got_grads[0]) != 0.0)  # every parameter reaches the sums


def test_padding_is_inert_and_equal_shapes_share_one_compilation():
    phi_index, idx1, idx2, c2, weight = shard(seed=2)
    t = 0.5 + DT * np.arange(N)
    common = (SMOOTH, t, Q, DT, PHI)
    points = prepare_points(phi_index, idx1, idx2, N, len(PHI))
    sums = pooled_sums(*common, points, c2, weight)
    real = weight > 0
    c2_pad = np.where(real, c2, 1e6)  # any value on padding points
    np.testing.assert_allclose(pooled_sums(*common, points, c2_pad, weight), sums, rtol=1e-14)
    trimmed = prepare_points(phi_index[real], idx1[real], idx2[real], N, len(PHI))
    np.testing.assert_allclose(pooled_sums(*common, trimmed, c2[real], weight[real]), sums, rtol=1e-13)

    compiled = pooled_sums._cache_size()
    other = shard(seed=3)
    pooled_sums(KINKED, *common[1:], prepare_points(*other[:3], N, len(PHI)), *other[3:])
    assert pooled_sums._cache_size() == compiled  # another shard of the same size: no recompilation


@pytest.mark.parametrize(
    "phi_index, idx1, idx2, message",
    [
        ([0, 1], [0, 1], [1], "equal length"),
        ([], [], [], "at least one point"),
        ([3], [0], [1], "phi_index"),
        ([0], [0], [N], "time indices"),
        ([0], [-1], [2], "time indices"),
        ([0], [5], [4], "idx1 <= idx2"),
    ],
)
def test_prepare_points_rejects_bad_points(phi_index, idx1, idx2, message):
    with pytest.raises(ValueError, match=message):
        prepare_points(phi_index, idx1, idx2, N, 3)
