"""Widening of the combined posterior where the map's elements share frames (speckle noise).

The shard likelihood treats the elements of a map as independent, each with its noise model's sd,
so the combined posterior has, near its mode, covariance close to the NLSQ matrix for independent
noise V_ind = (J^T J)^-1 chi2 / dof. The NLSQ sandwich V = (J^T J)^-1 S (J^T J)^-1 chi2 / dof
(:mod:`heterodyne.fit.speckle_covariance`) is the estimate's real covariance. The combined draws
are mapped affinely so that a Gaussian with covariance V_ind becomes one with covariance V
(the "open-faced sandwich" adjustment of a working-likelihood posterior, Shaby 2014):

    y' = ybar + Omega (y - ybar),   Omega = L_V L_ind^-1,

with L the Cholesky factors of both matrices in the sampling coordinates y (mapped by
V_y = G^-1 V G^-T, G = d theta / d y at the NLSQ values, first order) and ybar the mean of the
combined draws. Working in y keeps every adjusted draw inside the bounds; Omega acts on the
quantities the NLSQ matrix names (others, and the noise scale, are left as they are). The shape of
the posterior away from Gaussian is kept, its scale and orientation follow the sandwich.
"""

import jax
import jax.numpy as jnp
import numpy as np

from heterodyne.cmc.coordinates import theta_from_y, y_from_theta


def nlsq_covariances(nlsq):
    """(names, V, V_ind) from an nlsq.json record, or None when it has no ``covariance`` block
    or the two matrices are equal (independent noise: nothing to adjust)."""
    block = nlsq.get("covariance")
    if not block:
        return None
    sandwich = np.asarray(block["matrix"], dtype=np.float64)
    independent = np.asarray(block["independent"], dtype=np.float64)
    if np.array_equal(sandwich, independent):
        return None
    return list(block["names"]), sandwich, independent


def adjustment_matrix(covariances, names, coordinates, centre, dimension):
    """Omega (dimension, dimension) of the module docstring for the sampled quantities ``names``
    (the first M of ``dimension`` columns of y) with physical values ``centre`` (M,), from
    ``covariances`` = (nlsq names, V, V_ind)."""
    nlsq_names, sandwich, independent = covariances
    shared = [name for name in names if name in nlsq_names]
    at = [names.index(name) for name in shared]
    source = [nlsq_names.index(name) for name in shared]
    y0 = y_from_theta(np.asarray(centre, np.float64), coordinates)
    gradient = np.asarray(jax.jacfwd(lambda v: theta_from_y(v, coordinates)[0])(jnp.asarray(y0)))
    inverse = np.linalg.inv(gradient)[np.ix_(at, at)]  # d y / d theta on the shared quantities
    factors = [np.linalg.cholesky(inverse @ v[np.ix_(source, source)] @ inverse.T) for v in (sandwich, independent)]
    omega = np.eye(dimension)
    omega[np.ix_(at, at)] = factors[0] @ np.linalg.inv(factors[1])
    return omega


def sd_factors(covariances, names):
    """{name: sqrt(V_pp / V_ind,pp)}, the widening of each quantity's sd to first order."""
    nlsq_names, sandwich, independent = covariances
    return {
        name: float(np.sqrt(sandwich[k, k] / independent[k, k])) for k, name in enumerate(nlsq_names) if name in names
    }
