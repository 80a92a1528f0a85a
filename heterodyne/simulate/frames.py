"""Frame-level simulation: speckle detector frames of one region (q, phi) and the two-time map the
correlator computes from them (``simulate.level: frames``).

Units: t in s; q in 1/A; phi, phi0 in degrees; counts in photons; every other quantity is
dimensionless. C_ref, C_sample [A^2], C_v [A] and x_s come from
:func:`heterodyne.core.physics.grid_quantities` on the time grid t_k (one frame per c2 row).

Field of pixel p and coherent mode m at frame k (independent over p and m):

    E_k = x_r,k E_r,k + x_s,k E_s,k exp(i theta_k),   theta_k = q cos(phi + phi0) C_v[k]  [rad],

with E_r, E_s independent unit circular complex Gaussian processes (<|E|^2> = 1, <E E> = 0), each
a time-varying AR(1) driven by its own cumulative transport integral C (C_ref or C_sample):

    E_0 = w_0,   E_{k+1} = rho_k E_k + sqrt(1 - rho_k^2) w_{k+1},   rho_k = exp(-q^2 (C[k+1] - C[k]) / 2),

w_k independent unit circular. C is non-decreasing (J >= 0), so the field correlation is
<E_k E_l*> = exp(-q^2 |C[l] - C[k]| / 2), the square root of the intensity decay (Siegert).

Intensity and counts: I_k = (1/M) sum_m |E_k,m|^2 / n_k with n_k = x_r,k^2 + x_s,k^2, so <I_k> = 1;
the count of a pixel is K_k ~ Poisson(photons_per_pixel * I_k), so every frame has mean count
``photons_per_pixel`` [photons per pixel per frame]. The map is the correlator's normalised product
over the P pixels of the region,

    C2_ij = <K_i K_j>_pix / (<K_i>_pix <K_j>_pix).

Its ensemble limit (P -> infinity) is our model with contrast 1/M and offset 1. Per mode,
G_ij = <E_i E_j*> = x_r,i x_r,j e^{-q^2 |I_r| / 2} + x_s,i x_s,j e^{-q^2 |I_s| / 2} e^{i (theta_i - theta_j)},
so |G_ij|^2 = n_i n_j B_ij with B the normalised bracket of :mod:`heterodyne.core.physics`;
the Gaussian moment theorem gives <|E_i|^2 |E_j|^2> = n_i n_j + |G_ij|^2, hence for M independent
modes <I_i I_j> = 1 + B_ij / M, and Poisson counts add shot noise on the diagonal only:

    <K_i K_j> / photons_per_pixel^2 = 1 + B_ij / M + delta_ij / photons_per_pixel,
    C2_ij -> 1 + B_ij / M (i != j),   C2_ii -> 1 + 1/M + 1/photons_per_pixel.

The heterodyne normalisation n_i n_j = (x_r,i^2 + x_s,i^2)(x_r,j^2 + x_s,j^2) cancels: B divides by
it, and the per-frame scale 1/n_k of I_k (any per-frame scale) cancels in C2. The ratio of pixel
means has a bias of order 1/P; numerators and denominators averaged over independent regions before
dividing are unbiased to order 1/(total pixels). With u = K / photons_per_pixel - 1 (variance
1/M + 1/photons_per_pixel), C2_ij ~ 1 + <u_i u_j>_pix - <u_i>_pix <u_j>_pix, so between uncorrelated
frames the noise of C2_ij has sd (1/M + 1/photons_per_pixel) / sqrt(P); it grows with c2, and every
element of row i shares the fluctuation of frame i.
"""

from dataclasses import dataclass

import numpy as np

from heterodyne.core.parameters import as_vector
from heterodyne.core.physics import grid_quantities, phase_factor
from heterodyne.errors import InputError


@dataclass(frozen=True)
class SpeckleSettings:
    """Frame-level acquisition of each simulated region (the `simulate` keys of level frames)."""

    pixels: int
    modes: int
    photons_per_pixel: float

    @property
    def contrast(self):
        """Ensemble contrast of the correlator's map: 1/M (dimensionless)."""
        return 1.0 / self.modes

    @property
    def diagonal_excess(self):
        """Ensemble shot-noise excess of the diagonal C2_ii: 1/photons_per_pixel (dimensionless)."""
        return 1.0 / self.photons_per_pixel


def _unit_circular(rng, shape):
    """Independent unit circular complex Gaussians (re, im ~ N(0, 1/2)) of ``shape``, complex128."""
    return rng.standard_normal((*shape, 2)).view(np.complex128)[..., 0] * np.sqrt(0.5)


def unit_field_frames(rng, cumulative, q, shape):
    """Yield E_k (``shape``, complex128) for k = 0..N-1: the time-varying AR(1) of the module
    docstring with <E_k E_l*> = exp(-q^2 |C[l] - C[k]| / 2) for ``cumulative`` C (N,) [A^2],
    non-decreasing, and q [1/A]; every element of ``shape`` is an independent process."""
    steps = q * q * np.diff(np.asarray(cumulative, dtype=np.float64))  # q^2 (C[k+1] - C[k]) >= 0
    rho = np.exp(-0.5 * steps)
    innovation = np.sqrt(-np.expm1(-steps))  # sqrt(1 - rho^2)
    field = _unit_circular(rng, shape)
    yield field
    for r, s in zip(rho, innovation, strict=True):
        field = r * field + s * _unit_circular(rng, shape)
        yield field


def detector_frames(rng, params, t, dt, q, phi, speckle):
    """Photon counts K (N, P) [photons], float64, of a region of ``speckle.pixels`` pixels at ``q``
    [1/A] and angle ``phi`` [deg]: one frame per time t (N,) [s] with row spacing ``dt`` [s],
    truth ``params`` (14,) in canonical order (module docstring)."""
    c_ref, c_sample, c_v, x_s = (
        np.asarray(a, dtype=np.float64)
        for a in grid_quantities(np.asarray(params, dtype=np.float64), np.asarray(t, dtype=np.float64), dt)
    )
    x_r = 1.0 - x_s
    norm = x_r**2 + x_s**2
    heterodyne_phase = np.exp(1j * float(phase_factor(q, phi, params[13])) * c_v)
    shape = (speckle.pixels, speckle.modes)
    counts = np.empty((len(x_s), speckle.pixels))
    fields = zip(unit_field_frames(rng, c_ref, q, shape), unit_field_frames(rng, c_sample, q, shape), strict=True)
    for k, (e_ref, e_sample) in enumerate(fields):
        field = x_r[k] * e_ref + (x_s[k] * heterodyne_phase[k]) * e_sample
        intensity = np.mean(field.real**2 + field.imag**2, axis=1) / norm[k]
        counts[k] = rng.poisson(speckle.photons_per_pixel * intensity)
    return counts


def correlator_map(counts):
    """C2_ij = <K_i K_j>_pix / (<K_i>_pix <K_j>_pix) of counts (N, P): symmetric (N, N), float64."""
    counts = np.asarray(counts, dtype=np.float64)
    mean = counts.mean(axis=1)
    return (counts @ counts.T / counts.shape[1]) / np.outer(mean, mean)


def speckle_maps(spec, q):
    """Correlator maps (n_phi, N, N) at ``q`` [1/A] for the angles of ``spec`` (a
    :class:`~heterodyne.simulate.spec.SimulationSpec` with ``speckle`` set), each from its own
    region of frames. The generator is seeded by (seed, round(q * 1e6)), as at map level."""
    rng = np.random.default_rng([spec.seed, int(round(q * 1e6))])
    params = as_vector(spec.parameters)
    maps = []
    for phi in spec.phi:
        counts = detector_frames(rng, params, spec.t, spec.dt, q, phi, spec.speckle)
        dark = np.flatnonzero(counts.sum(axis=1) == 0)
        if dark.size:
            raise InputError(
                f"config: frame {dark[0]} of the region at q = {q:g} 1/A, phi = {phi:g} deg "
                "received no photon, so its c2 row is undefined; raise "
                "'simulate.photons_per_pixel' or 'simulate.pixels'"
            )
        maps.append(correlator_map(counts))
    return np.stack(maps)
