"""Hard CMC posteriors with known truth: simulated maps, the NLSQ fit of the workflow, and the
shards of one Consensus Monte Carlo run.

Each case is a truth, its free parameters, angles, q, time grid and Gaussian noise sigma (c2
units, independent on every pair i < j). t_k = 1 s + k dt (the map starts away from t = 0). The
NLSQ record comes from :func:`heterodyne.fit.joint_fit.fit_joint` started at the truth moved by
10 %, as the workflow runs it.
"""

from typing import NamedTuple

import numpy as np
from nlsq_fixtures import nlsq_section

from heterodyne.cmc.combine import combine_shards
from heterodyne.cmc.model import build_model_spec
from heterodyne.cmc.sampling import NutsSettings
from heterodyne.cmc.shards import sample_all_shards
from heterodyne.core.jax_backend import compute_c2_heterodyne_multiphi
from heterodyne.core.parameters import PARAMETER_NAMES, as_vector
from heterodyne.data.dataset import Dataset
from heterodyne.fit.joint_fit import fit_joint
from heterodyne.fit.problem import build_problem
from heterodyne.fit.results import result_record
from heterodyne.fit.settings import settings_from_config
from heterodyne.weighting.weights_file import AngleWeights

PRIOR = {"default": {"kind": "truncated-normal", "width": 10.0, "width_unit": "stderr"}, "parameters": {}}


class Case(NamedTuple):
    truth: dict
    free: tuple
    phi: tuple
    q: float
    n: int
    dt: float
    sigma: float
    seed: int


#: eight angles (22.5 k deg), a constant fraction 0.25 and a moderate heterodyne phase (q v0 T ~
#: 3 rad over the map); the other 8-angle cases change one thing of it
EIGHT_ANGLES = Case(
    {"D0_ref": 1000.0, "D0_sample": 4000.0, "v0": 30.0, "f0": 0.25},
    ("D0_ref", "D0_sample", "v0", "f0"),
    tuple(22.5 * k for k in range(8)),
    0.01,
    50,
    0.2,
    0.003,
    106,
)

CASES = {
    # x_s grows in time (f1 free, f2 fixed); both transport exponents and beta non-zero
    "growing_fraction": Case(
        {
            "D0_ref": 2000.0,
            "alpha_ref": 0.3,
            "D0_sample": 6000.0,
            "alpha_sample": -0.2,
            "v0": 60.0,
            "beta": 0.3,
            "f0": 0.3,
            "f1": 0.08,
        },
        ("D0_ref", "alpha_ref", "D0_sample", "alpha_sample", "v0", "beta", "f0", "f1"),
        (0.0, 45.0, 90.0),
        0.01,
        50,
        0.2,
        0.002,
        101,
    ),
    # one angle, a fast heterodyne phase (q v T ~ 20 rad): phi0 fixed
    "fast_phase_one_angle": Case(
        {"D0_ref": 1500.0, "D0_sample": 5000.0, "v0": 200.0, "f0": 0.3},
        ("D0_ref", "D0_sample", "v0", "f0"),
        (20.0,),
        0.01,
        50,
        0.2,
        0.003,
        102,
    ),
    # D_offset_ref free beside a power law with alpha_ref != 0, two angles
    "offset_with_exponent": Case(
        {
            "D0_ref": 800.0,
            "alpha_ref": 0.8,
            "D_offset_ref": 1500.0,
            "D0_sample": 8000.0,
            "v0": 80.0,
            "f0": 0.35,
            "f1": 0.05,
        },
        ("D0_ref", "alpha_ref", "D_offset_ref", "D0_sample", "v0", "f0", "f1"),
        (10.0, 80.0),
        0.01,
        50,
        0.2,
        0.002,
        103,
    ),
    # x_s growing in time (f1 free, f2 fixed), N = 40 over about the same span
    "eight_angles_growing_fraction": EIGHT_ANGLES._replace(
        truth={**EIGHT_ANGLES.truth, "f1": 0.05}, free=(*EIGHT_ANGLES.free, "f1"), n=40, dt=0.25, seed=107
    ),
    "eight_angles": EIGHT_ANGLES,
    # a slow heterodyne phase (q v0 T ~ 0.3 rad over the map): v0 lies within one standard error
    # of its bound 0
    "slow_phase_eight_angles": EIGHT_ANGLES._replace(truth={**EIGHT_ANGLES.truth, "v0": 3.0}, seed=105),
    # constant fraction near 1/2, rates a factor 3 apart, a small phase (< 1 rad): the curved ridge
    "constant_half_fraction": Case(
        {"D0_ref": 2000.0, "D0_sample": 6000.0, "v0": 10.0, "f0": 0.45},
        ("D0_ref", "D0_sample", "v0", "f0"),
        (0.0, 50.0, 100.0),
        0.01,
        50,
        0.2,
        0.002,
        104,
    ),
}


def simulate(case):
    """(Dataset, AngleWeights with the true sigma) of ``case``."""
    t = 1.0 + case.dt * np.arange(case.n)
    phi = np.asarray(case.phi, np.float64)
    contrast, offset = 0.2 + 0.01 * np.arange(len(phi)), 1.0 + 0.001 * np.arange(len(phi))
    clean = np.asarray(compute_c2_heterodyne_multiphi(as_vector(case.truth), t, case.q, case.dt, phi, contrast, offset))
    noise = np.triu(np.random.default_rng(case.seed).normal(0.0, case.sigma, clean.shape), k=1)
    c2 = clean + noise + np.swapaxes(noise, 1, 2)
    dataset = Dataset(
        c2=c2,
        valid=np.ones(c2.shape, bool),
        t=t,
        phi=phi,
        dt=case.dt,
        q=case.q,
        time_origin=0.0,
        source_path="simulated",
        source_sha256="",
        selection={},
    )
    weights = AngleWeights(
        phi=phi, sigma=np.full(len(phi), case.sigma), contrast=contrast, offset=offset, method="uniform"
    )
    return dataset, weights


def true_values(case, names):
    """Truth of each sampled quantity name (physics parameters, contrast_a, offset_a)."""
    truth = dict(zip(PARAMETER_NAMES, as_vector(case.truth), strict=True))
    n_phi = len(case.phi)
    truth.update({f"contrast_{a}": 0.2 + 0.01 * a for a in range(n_phi)})
    truth.update({f"offset_{a}": 1.0 + 0.001 * a for a in range(n_phi)})
    return np.array([truth[name] for name in names])


def nlsq_fit(case, dataset, weights):
    """The workflow's NLSQ fit of ``case`` as an nlsq.json record."""
    start = {name: value * (1.1 if name in case.free else 1.0) for name, value in case.truth.items()}
    section = nlsq_section(start, fixed=[n for n in PARAMETER_NAMES if n not in case.free])
    fit = fit_joint(build_problem(dataset, weights), settings_from_config(section))
    return result_record(fit, dataset.phi, {})


def cmc_run(case, settings, num_shards=2, seed=0):
    """(nlsq record, spec, info, [ShardDraws]) of one CMC run of ``case``."""
    dataset, weights = simulate(case)
    record = nlsq_fit(case, dataset, weights)
    spec, info = build_model_spec(record, PRIOR, dataset.t, dataset.q, len(dataset.phi), num_shards)
    shards = sample_all_shards(dataset, weights, spec, info, settings, num_shards, seed)
    return record, spec, info, shards


SETTINGS = NutsSettings(
    warmup=300,
    samples=600,
    chains=4,
    target_accept=0.95,
    dense_mass=True,
    adapt_mass_matrix=True,
    max_tree_depth=10,
    sample_noise_scale=False,
)


def combined_run(case, num_shards=2):
    """(nlsq record, spec, info, [ShardDraws], combined draws {name: (S,)}) of a run of ``case``
    on ``num_shards`` shards with SETTINGS, the consensus combined in the shared coordinates."""
    record, spec, info, shards = cmc_run(case, SETTINGS, num_shards)
    draws, _ = combine_shards([s.unconstrained for s in shards], info.names, spec.coords)
    return record, spec, info, shards, draws
