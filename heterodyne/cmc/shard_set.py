"""The shard files of one q bin's consensus: read through :mod:`heterodyne.cmc.draws_file` and
checked to be one complete CMC run in the sampling coordinates and under the prior that the NLSQ fit
and config give now."""

import numpy as np

from heterodyne.cmc.draws_file import load_shard
from heterodyne.errors import InputError


def load_matching_shards(paths, num_shards, seed, origin):
    """Shard files ordered by index; InputError unless they are exactly shards 0..K-1 of one run
    (this K and seed; ``origin`` says where K and the seed came from) with the same quantities and
    chains (the draws per chain may differ: a shard extends its chains until its ESS suffices), and
    every quantity's draws vary."""
    shards = [load_shard(p) for p in paths]
    for path, s in zip(paths, shards, strict=True):
        if s.num_shards != num_shards or s.seed != seed:
            raise InputError(
                f"{path}: written with K={s.num_shards} shards, seed={s.seed} but the config "
                f"gives K={num_shards}, cmc.seed={seed} ({origin}); re-run cmc-shard for every shard"
            )
    indices = sorted(s.shard for s in shards)
    if indices != list(range(num_shards)):
        raise InputError(f"--shards: got shard indices {indices}, need each of 0..{num_shards - 1} once")
    first = shards[0]
    chains = {name: x.shape[0] for name, x in first.run.draws.items()}
    for path, s in zip(paths, shards, strict=True):
        if {name: x.shape[0] for name, x in s.run.draws.items()} != chains:
            raise InputError(
                f"{path}: quantities or chain counts differ from {paths[0]}; re-run "
                "cmc-shard for every shard with the same config"
            )
    for path, s in zip(paths, shards, strict=True):
        stuck = [name for name, x in s.run.draws.items() if not (np.all(np.isfinite(x)) and np.ptp(x) > 0)]
        if stuck:
            raise InputError(
                f"{path}: the draws of {', '.join(stuck)} are constant or not finite (the "
                f"chains did not move; {int(np.sum(s.run.diverging))} divergences), so this shard "
                "has no posterior to combine. Check the NLSQ result it started from (nlsq.json: "
                "parameters at a bound, non-converged fit), raise cmc.warmup, and re-run cmc-shard"
            )
    n_draws = min(next(iter(s.run.draws.values())).size for s in shards)
    if n_draws <= len(chains):
        raise InputError(
            f"{paths[0]}: {n_draws} draws per shard for {len(chains)} quantities; the consensus "
            "needs more draws than quantities to invert each shard's covariance. Raise "
            "cmc.samples (or cmc.chains) and re-run cmc-shard"
        )
    return sorted(shards, key=lambda s: s.shard)


def check_sampling_model(spec, names, shards, nlsq_path):
    """InputError unless every shard file of ``shards`` sampled the quantities ``names`` (the noise
    scale aside) and was sampled in the coordinates
    and under the prior that ``nlsq_path`` and the config give now (``spec``, a
    :class:`~heterodyne.cmc.model.ModelSpec`; equal to 1e-12 relative: the same computation): the
    consensus maps the draws back to physical units with those coordinates and divides that prior
    out of each shard."""
    for shard in shards:
        sampled = [name for name in shard.run.draws if name != "noise_scale"]
        if sampled != names:
            raise InputError(
                f"{shard.path}: sampled {sampled} but {nlsq_path} and the config give "
                f"{names}; re-run cmc-shard for every shard"
            )
        for what, expected, recorded in (
            ("coordinates", spec.coords._asdict(), shard.coordinates._asdict()),
            ("prior", spec.prior._asdict(), shard.prior),
        ):
            for field, a in expected.items():
                a, b = np.asarray(a), np.asarray(recorded.get(field))
                if a.shape != b.shape or not np.allclose(a, b, rtol=1e-12, atol=0.0):
                    raise InputError(
                        f"{shard.path}: sampled in other {what} ('{field}' differs) than {nlsq_path} "
                        "and the config give now (changed nlsq bounds, cmc.prior or fit); re-run "
                        "cmc-shard for every shard"
                    )
