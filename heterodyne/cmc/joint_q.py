"""Joint multi-q posterior: the consensus of the per-q CMC posteriors of one dataset.

The q bins hold independent data. In the joint multi-q model (:mod:`heterodyne.fit.joint_q`) they
share the transport and velocity parameters s, and bin b has its own nuisance quantities n_b (its
free fractions, contrast_a and offset_a of its angles, its noise scale). With the priors
independent,

    p(s, n_1..n_B | data) ∝ pi_J(s) prod_b L_b(s, n_b) pi(n_b),

while bin b's CMC posterior (:mod:`heterodyne.cmc.combine`) is p_b(s, n_b) ∝ pi_b(s) L_b(s, n_b)
pi(n_b), with pi_b the per-q prior of s (the ``cmc.prior`` rule around bin b's NLSQ result, see
:mod:`heterodyne.cmc.model`). Hence the joint posterior of s is pi_J(s) prod_b p_b(s) / pi_b(s),
pi_J the same rule around the joint NLSQ result, and bin b's nuisance given s keeps its per-q
conditional p_b(n_b | s). The q bins play the part of the shards of Consensus Monte Carlo.

Gaussian consensus. Bin b's draws of s give mean mu_b and precision Lambda_b = Cov_b^-1; a normal
prior of sd p and centre c has precision Pi = diag(1 / p^2) (0 for a uniform prior; truncation
ignored, the priors span ~10 standard errors). Then the joint precision and mean are

    Lambda = sum_b (Lambda_b - Pi_b) + Pi_J,
    mu     = Lambda^-1 [sum_b (Lambda_b mu_b - Pi_b c_b) + Pi_J c_J].

Draws (sample-level, as Scott et al. 2016, with the priors divided out): with draw i of every bin,

    u_i = sum_b Lambda_b (s_{b,i} - mu_b)         (covariance S = sum_b Lambda_b for Gaussian bins),
    s_i = mu + C_Lambda C_S^-1 u_i,               C_Lambda C_Lambda^T = Lambda^-1, C_S C_S^T = S,

so the draws have mean mu and covariance Lambda^-1 exactly when every p_b is Gaussian, and keep
the shape of the per-q draws otherwise. Bin b's nuisance follows its regression on s within the
bin's draws, exact for a Gaussian p_b:

    n'_{b,i} = n_{b,i} + B_b (s_i - s_{b,i}),     B_b = Cov_b(n, s) Cov_b(s)^-1.

A shared parameter that bin b holds fixed (e.g. phi0 in a single-angle bin) has no draws there:
that bin's rows and columns of Lambda_b are zero (its other draws are conditional on the fixed
value, an approximation). All of this is computed on s standardised by the pooled sd of the
bins' draws (for well-conditioned inverses) and mapped back.

Agreement of the bins: with mu_bar = (sum_b Lambda_b)^-1 sum_b Lambda_b mu_b,
chi2 = sum_b (mu_b - mu_bar)^T Lambda_b (mu_b - mu_bar) on sum_b p_b - P degrees of freedom (p_b
the shared parameters bin b samples, P their number). A small p says the per-q posteriors do not
share one s: the product then describes no sample, which the summary flags.
"""

from typing import NamedTuple

import numpy as np
from scipy import stats

#: a per-q marginal with |skewness| above this is not close to Gaussian (the consensus is approximate)
SKEW_LIMIT = 0.5
#: significance level of the agreement test of the per-q posteriors
AGREEMENT_ALPHA = 0.05


class BinPosterior(NamedTuple):
    """One q bin's CMC posterior: ``draws`` {name: (chains, draws)} (physical units), and for
    each shared parameter it samples its prior ``centre`` and ``precision`` {name: c_b, 1 / p_b^2
    or 0 for a uniform prior}."""

    folder: str
    draws: dict
    centre: dict
    precision: dict


class JointPosterior(NamedTuple):
    """``draws`` {name: (chains * draws,)} (shared names, then ``name@folder`` of every bin's
    nuisance); ``mean`` and ``covariance`` (P,), (P, P) of the shared parameters (Gaussian
    consensus); ``agreement`` {chi2, dof, p, agree}; ``skewed`` [{parameter, folder, skew}] of the
    per-q marginals with |skew| > SKEW_LIMIT."""

    draws: dict
    mean: np.ndarray
    covariance: np.ndarray
    agreement: dict
    skewed: list


def _thinned(x, length):
    """(chains, length) evenly thinned from (chains, n >= length)."""
    return x[:, np.round(np.linspace(0, x.shape[1] - 1, length)).astype(int)]


def _skew(x):
    centred = x - x.mean()
    return float(np.mean(centred**3) / np.mean(centred**2) ** 1.5)


def _agreement(means, precisions, indices, n_shared):
    """chi2, dof and p of the agreement of the per-q means (module docstring), standardised units."""
    total, weighted = np.zeros((n_shared, n_shared)), np.zeros(n_shared)
    for mu, lam, idx in zip(means, precisions, indices, strict=True):
        total[np.ix_(idx, idx)] += lam
        weighted[idx] += lam @ mu
    centre = np.linalg.solve(total, weighted)
    chi2 = sum(
        float((mu - centre[idx]) @ lam @ (mu - centre[idx]))
        for mu, lam, idx in zip(means, precisions, indices, strict=True)
    )
    dof = sum(len(idx) for idx in indices) - n_shared
    p = float(stats.chi2.sf(chi2, dof)) if dof > 0 else None
    return {"chi2": chi2, "dof": int(dof), "p": p, "agree": p is None or p > AGREEMENT_ALPHA}


def joint_posterior(bins, shared, centre, precision):
    """:class:`JointPosterior` of the q ``bins`` (:class:`BinPosterior`, the same number of chains
    each) over the ``shared`` parameter names, with the joint prior ``centre`` and ``precision``
    {name: value} (module docstring). Each bin's chains are thinned evenly to the shortest bin's
    length; the joint draw i of chain c combines draw i of chain c of every bin. ValueError when
    the chains differ, a shared parameter has draws in no bin, or the joint precision is not
    positive definite."""
    chains = {next(iter(b.draws.values())).shape[0] for b in bins}
    if len(chains) != 1:
        raise ValueError(f"the q bins' posteriors have different numbers of chains {sorted(chains)}")
    (n_chains,) = chains
    length = min(next(iter(b.draws.values())).shape[1] for b in bins)
    missing = [name for name in shared if not any(name in b.draws for b in bins)]
    if missing:
        raise ValueError(f"no q bin sampled the shared parameter(s) {', '.join(missing)}")
    flat = [{name: _thinned(x, length).reshape(-1) for name, x in b.draws.items()} for b in bins]
    scale = np.array([np.std(np.concatenate([f[name] for f in flat if name in f])) for name in shared])
    scale[scale == 0] = 1.0
    n_shared = len(shared)
    lam = np.diag([precision[name] for name in shared]) * np.outer(scale, scale)
    rhs = lam @ (np.array([centre[name] for name in shared]) / scale)
    spread, u = np.zeros((n_shared, n_shared)), np.zeros((n_chains * length, n_shared))
    indices, sampled, means, precisions, skewed = [], [], [], [], []
    for b, f in zip(bins, flat, strict=True):
        idx = [k for k, name in enumerate(shared) if name in f]
        x = np.stack([f[shared[k]] / scale[k] for k in idx], axis=1)
        mu, lam_b = x.mean(axis=0), np.linalg.inv(np.atleast_2d(np.cov(x, rowvar=False)))
        pi_b = np.array([b.precision[shared[k]] for k in idx]) * scale[idx] ** 2
        c_b = np.array([b.centre[shared[k]] for k in idx]) / scale[idx]
        block = np.ix_(idx, idx)
        lam[block] += lam_b - np.diag(pi_b)
        rhs[idx] += lam_b @ mu - pi_b * c_b
        spread[block] += lam_b
        u[:, idx] += (x - mu) @ lam_b
        indices.append(idx), sampled.append(x), means.append(mu), precisions.append(lam_b)
        skewed += [
            {"parameter": shared[k], "folder": b.folder, "skew": s}
            for k, s in zip(idx, (_skew(col) for col in x.T), strict=True)
            if abs(s) > SKEW_LIMIT
        ]
    try:
        cov = np.linalg.inv(lam)
        transform = np.linalg.cholesky(cov) @ np.linalg.inv(np.linalg.cholesky(spread))
    except np.linalg.LinAlgError:
        raise ValueError(
            "the joint precision of the shared parameters is not positive definite (a "
            "parameter the q bins barely determine)"
        ) from None
    mean = cov @ rhs
    shared_draws = mean + u @ transform.T
    draws = {name: shared_draws[:, k] * scale[k] for k, name in enumerate(shared)}
    for b, f, idx, x in zip(bins, flat, indices, sampled, strict=True):
        others = [name for name in f if name not in shared]
        if not others:
            continue
        z = np.stack([f[name] for name in others], axis=1)
        xc, zc = x - x.mean(axis=0), z - z.mean(axis=0)
        regression = np.linalg.solve(xc.T @ xc, xc.T @ zc)  # (p_b, n_o) = B_b^T
        moved = z + (shared_draws[:, idx] - x) @ regression
        draws.update({f"{name}@{b.folder}": moved[:, j] for j, name in enumerate(others)})
    return JointPosterior(
        draws=draws,
        mean=mean * scale,
        covariance=cov * np.outer(scale, scale),
        agreement=_agreement(means, precisions, indices, n_shared),
        skewed=skewed,
    )
