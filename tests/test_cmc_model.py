"""CMC model: standardised quantities, bounded map, priors raised to 1/K and the pooled
likelihood, checked against a NumPy/SciPy re-derivation of the documented log density."""

import copy

import jax
import numpy as np
import pytest
import scipy.special
import scipy.stats
from numpyro.infer.util import log_density

from cmc_fixtures import FREE, PHI, SIGMA, c2_maps, nlsq_record, simulated_dataset
from heterodyne.cmc.model import (LOG_NOISE_SCALE_PRIOR_SD, bounded_from_unconstrained, build_model_spec,
                                  shard_model)
from heterodyne.cmc.pooling import pooled_points, shard_labels
from heterodyne.cmc.sampling import laplace_inverse_mass, shard_data
from heterodyne.core.parameters import INDEX, PARAMETERS, SCALING_BOUNDS, as_vector
from heterodyne.errors import InputError

K = 3
PRIOR = {"default": {"kind": "truncated-normal", "width": 4.0, "width_unit": "stderr"},
         "parameters": {"v0": {"kind": "uniform", "width": 2.0, "width_unit": "absolute"}}}


@pytest.fixture(scope="module")
def problem():
    dataset = simulated_dataset()
    nlsq = nlsq_record(dataset)
    spec, names = build_model_spec(nlsq, PRIOR, len(PHI))
    points = pooled_points(dataset.c2, dataset.valid)
    mine = points.take(shard_labels(points, K, 0) == 1)
    data = shard_data(dataset, SIGMA, mine, len(mine) + 5, K)  # 5 masked padding points
    return dataset, nlsq, spec, names, mine, data


def test_spec_standardises_free_quantities_on_the_nlsq_result(problem):
    _, nlsq, spec, names, _, _ = problem
    assert names == list(FREE) + ["contrast_0", "contrast_1", "offset_0", "offset_1"]
    assert spec.free_index.tolist() == [INDEX[name] for name in FREE]
    v0 = nlsq["parameters"]["v0"]
    m = names.index("v0")
    assert spec.centre[m] == v0["value"] and spec.scale[m] == v0["stderr"]
    # uniform v0 on value +- 2 A/s (absolute width) -> z in +-2 / stderr
    assert spec.z_high[m] == pytest.approx(2.0 / v0["stderr"]) and spec.z_low[m] == pytest.approx(-2.0 / v0["stderr"])
    assert not spec.normal_prior[m]
    c = names.index("contrast_1")
    lower, upper = SCALING_BOUNDS["contrast"]
    stderr = nlsq["contrast_stderr"][1]
    assert spec.z_low[c] == pytest.approx((lower - nlsq["contrast"][1]) / stderr)
    assert spec.z_high[c] == pytest.approx((upper - nlsq["contrast"][1]) / stderr)
    assert spec.z_width[c] == 4.0 and spec.normal_prior[c]


def test_nlsq_bounds_override_the_registry(problem):
    nlsq = problem[1]
    spec, names = build_model_spec(nlsq, PRIOR, len(PHI), bounds={"D0_sample": [1000.0, 2000.0]})
    m = names.index("D0_sample")
    centre, stderr = nlsq["parameters"]["D0_sample"]["value"], nlsq["parameters"]["D0_sample"]["stderr"]
    assert spec.z_low[m] == pytest.approx((1000.0 - centre) / stderr)
    assert spec.z_high[m] == pytest.approx((2000.0 - centre) / stderr)


def test_bounded_map_is_identity_at_the_anchor_and_stays_inside(problem):
    spec = problem[2]
    z0, _ = bounded_from_unconstrained(np.zeros(len(spec.centre)), spec)
    assert np.allclose(z0, spec.z_anchor, atol=1e-12)
    slope = jax.jacfwd(lambda u: bounded_from_unconstrained(u, spec)[0])(np.zeros(len(spec.centre)))
    assert np.allclose(np.diag(slope), 1.0, rtol=1e-9)
    z_far, _ = bounded_from_unconstrained(np.full(len(spec.centre), 1e4), spec)
    span = spec.z_high - spec.z_low  # z -> hi up to rounding of lo + (hi - lo)
    assert np.all(z_far <= spec.z_high + 1e-12 * span) and np.all(z_far > spec.z_anchor)


def test_parameter_at_a_bound_gets_an_interior_anchor(problem):
    nlsq = copy.deepcopy(problem[1])
    nlsq["parameters"]["f0"]["value"] = 1.0  # upper bound of f0
    spec, names = build_model_spec(nlsq, PRIOR, len(PHI))
    m = names.index("f0")
    assert spec.z_high[m] == 0.0 and spec.z_low[m] < spec.z_anchor[m] < 0.0


def _numpy_log_density(u, dataset, nlsq, spec, names, points, log_noise_scale=None):
    """Documented log density re-derived with NumPy/SciPy and the meshgrid kernel."""
    lo, hi, a = spec.z_low, spec.z_high, spec.z_anchor
    g = scipy.special.logit((a - lo) / (hi - lo))
    h = (hi - lo) * scipy.special.expit(g) * scipy.special.expit(-g)
    v = g + u / h
    z = lo + (hi - lo) * scipy.special.expit(v)
    log_jac = np.log((hi - lo) * scipy.special.expit(v) * scipy.special.expit(-v) / h)
    w = spec.z_width
    log_prior = np.where(spec.normal_prior,
                         scipy.stats.truncnorm.logpdf(z, lo / w, hi / w, scale=w),
                         -np.log(hi - lo))
    theta = spec.centre + spec.scale * z
    values = {p.name: nlsq["parameters"][p.name]["value"] for p in PARAMETERS}
    values.update({name: theta[m] for m, name in enumerate(names[:len(FREE)])})
    n_phi = len(PHI)
    maps = c2_maps(as_vector(values), theta[len(FREE):len(FREE) + n_phi], theta[len(FREE) + n_phi:])
    model = maps[points.phi_index, points.idx1, points.idx2]
    observed = dataset.c2[points.phi_index, points.idx1, points.idx2]
    sigma = SIGMA[points.phi_index]
    total = log_jac.sum() + log_prior.sum() / K
    if log_noise_scale is not None:
        sigma = sigma * np.exp(log_noise_scale)
        total += scipy.stats.norm.logpdf(log_noise_scale, scale=LOG_NOISE_SCALE_PRIOR_SD) / K
    return total + scipy.stats.norm.logpdf(observed, model, sigma).sum()


def test_log_density_matches_numpy_rederivation(problem):
    dataset, nlsq, spec, names, points, data = problem
    rng = np.random.default_rng(5)
    for _ in range(3):
        u = rng.normal(0, 1.5, len(names))
        value, _ = log_density(shard_model, (data, spec), {}, {"u": u})
        expected = _numpy_log_density(u, dataset, nlsq, spec, names, points)
        assert float(value) == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_log_density_with_sampled_noise_scale(problem):
    dataset, nlsq, spec, names, points, data = problem
    u = np.linspace(-1, 1, len(names))
    value, _ = log_density(shard_model, (data, spec), {"sample_noise_scale": True},
                           {"u": u, "log_noise_scale": 0.2})
    expected = _numpy_log_density(u, dataset, nlsq, spec, names, points, log_noise_scale=0.2)
    assert float(value) == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_free_quantity_without_stderr_is_an_input_error(problem):
    nlsq = copy.deepcopy(problem[1])
    nlsq["parameters"]["v0"]["stderr"] = None
    with pytest.raises(InputError, match="'v0' has standard error nan"):
        build_model_spec(nlsq, PRIOR, len(PHI), source="results/x/nlsq.json")


def test_wrong_number_of_contrasts_is_an_input_error(problem):
    nlsq = copy.deepcopy(problem[1])
    nlsq["contrast"] = nlsq["contrast"][:1]
    with pytest.raises(InputError, match="must hold 2 values"):
        build_model_spec(nlsq, PRIOR, len(PHI))



def test_laplace_mass_matrix_has_the_shard_fisher_variances(problem):
    """In a shard with 1/K of the points, z (standardised by full-data standard errors) has
    variance ~ K, and the log noise scale 1 / (2 n_points) (Fisher information of log sigma)."""
    _, _, spec, names, points, data = problem
    covariance = laplace_inverse_mass(data, spec, sample_noise_scale=True, dense=True)
    assert covariance.shape == (len(names) + 1, len(names) + 1)
    assert covariance[0, 0] == pytest.approx(1 / (2 * len(points)), rel=0.05)  # log_noise_scale first
    prior_variance = K * np.where(spec.normal_prior, spec.z_width**2, np.inf)
    expected = 1 / (1 / K + 1 / prior_variance)
    assert np.diag(covariance)[1:] == pytest.approx(expected, rel=0.15)
    diagonal = laplace_inverse_mass(data, spec, sample_noise_scale=False, dense=False)
    assert diagonal.shape == (len(names),)
