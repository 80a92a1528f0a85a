"""``heterodyne figures``: draw every figure of one dataset from its saved results.

Reads dataset.h5, weights.json, nlsq.json/.h5, cmc/summary.json, cmc/combined.h5 and the
cmc/shard_{k}.h5 files beside combined.h5; writes PNG (200 dpi), PDF and an .rst caption per
figure into --outdir (replaced as a whole, only on success).
"""

from heterodyne.atomic import atomic_folder
from heterodyne.cli import add_required_arguments, add_settings_argument, read_settings
from heterodyne.cmc.draws_file import shard_paths_beside
from heterodyne.data.dataset import load_dataset
from heterodyne.fit.results import load_nlsq
from heterodyne.lineage import check_lineage
from heterodyne.plots.c2_maps import write_c2_maps
from heterodyne.plots.cmc_posteriors import write_cmc_figures
from heterodyne.plots.nlsq_vs_cmc import write_nlsq_vs_cmc
from heterodyne.plots.noise_vs_lag import write_noise_vs_lag
from heterodyne.plots.one_time_cuts import write_one_time_cuts
from heterodyne.plots.physics_curves import write_physics_curves
from heterodyne.plots.saved_results import load_cmc
from heterodyne.provenance import provenance_record
from heterodyne.weighting.weights_file import check_weights_for, load_weights


def add_arguments(parser):
    add_settings_argument(parser, "dataset", "figures")
    add_required_arguments(
        parser,
        name="dataset name shown in the figures",
        data="results/D/dataset.h5",
        weights="results/D/weights.json",
        nlsq_json="results/D/nlsq.json",
        nlsq_h5="results/D/nlsq.h5",
        cmc_json="results/D/cmc/summary.json",
        cmc_h5="results/D/cmc/combined.h5 (shard files beside it)",
        outdir="results/D/figures",
    )


def run(args):
    config = read_settings(args)
    section, settings = config["dataset"], config["figures"]
    dataset = load_dataset(args.data)
    check_lineage({args.weights: [args.data]})
    weights = load_weights(args.weights)
    check_weights_for(dataset, weights, args.weights)
    nlsq = load_nlsq(args.nlsq_json, args.nlsq_h5, n_phi=len(dataset.phi))
    cmc = load_cmc(args.cmc_json, args.cmc_h5)
    shards = shard_paths_beside(args.cmc_h5, len(cmc.shard_draws))
    check_lineage(
        {
            args.nlsq_json: [args.data, args.weights],
            args.nlsq_h5: [args.data, args.weights],
            **{shard: [args.data, args.weights, args.nlsq_json] for shard in shards},
            args.cmc_json: shards,
            args.cmc_h5: shards,
        }
    )
    inputs = [args.data, args.weights, args.nlsq_json, args.nlsq_h5, args.cmc_json, args.cmc_h5, *shards]
    provenance = provenance_record({"dataset": section, "figures": settings}, inputs)
    name = args.name
    with atomic_folder(args.outdir) as outdir:
        write_c2_maps(outdir, dataset, weights, nlsq, settings["residual_limit"], name, provenance)
        write_one_time_cuts(outdir, dataset, nlsq, settings["cut_ages"], name, provenance)
        write_noise_vs_lag(outdir, dataset, weights, name, provenance)
        write_physics_curves(outdir, dataset, nlsq, cmc, settings["posterior_draws"], name, provenance)
        write_cmc_figures(outdir, nlsq, cmc, settings["posterior_draws"], name, provenance)
        write_nlsq_vs_cmc(outdir, dataset, nlsq, cmc, name, provenance)
    return 0
