"""The simulated two-time maps of one q bin (float64, symmetric, one per angle of the spec).

At level ``maps`` (default), for each angle phi_a

    c2_ij = offset_a + contrast_a * B_ij(params, q, phi_a) + e_ij          (i < j, e ~ N(0, sigma_a^2))
    c2_ii = offset_a + contrast_a * B_ii + diagonal_excess + e_ii          (raw shot-noise bump)

with B the heterodyne bracket (:func:`heterodyne.core.c2.c2_meshgrid`) on the absolute grid t of
the :class:`~heterodyne.simulate.spec.SimulationSpec`; one noise draw per unordered pair (the map
is symmetric). At level ``frames`` each map is the correlator's product of simulated speckle
frames of its own region of pixels (:mod:`heterodyne.simulate.frames`).
"""

import numpy as np

from heterodyne.core.c2 import c2_meshgrid
from heterodyne.core.parameters import as_vector
from heterodyne.simulate.frames import speckle_maps


def simulate_maps(spec, q):
    """Symmetric maps (n_phi, N, N) at ``q`` [1/A] for the angles of ``spec`` (float64), from
    speckle frames at level frames, else model plus Gaussian noise (:func:`noisy_model_maps`)."""
    return noisy_model_maps(spec, q) if spec.speckle is None else speckle_maps(spec, q)


def noisy_model_maps(spec, q):
    """Model plus Gaussian noise, (n_phi, N, N) at ``q`` [1/A] for the angles of ``spec`` (float64).

    The generator is seeded by (seed, round(q * 1e6)) so each q bin gets its own noise.
    """
    model = np.asarray(
        c2_meshgrid(
            as_vector(spec.parameters),
            spec.t,
            q,
            spec.dt,
            np.asarray(spec.phi, float),
            np.asarray(spec.contrast, float),
            np.asarray(spec.offset, float),
        )
    )
    rng = np.random.default_rng([spec.seed, int(round(q * 1e6))])
    n = spec.n_frames
    upper = np.triu(rng.standard_normal((len(spec.phi), n, n)))
    noise = (upper + np.transpose(np.triu(upper, 1), (0, 2, 1))) * np.asarray(spec.noise)[:, None, None]
    maps = model + noise
    maps[:, np.arange(n), np.arange(n)] += spec.diagonal_excess
    return maps
