"""`heterodyne cmc-shard`: NUTS on shard k of the pooled points -> cmc/shard_k.h5.

The chains of the shard run in parallel on one CPU device per chain when the process may use
that many cores (``os.sched_getaffinity``); otherwise in sequence. Progress goes to stderr (the
rule's log): a start and end line and numpyro's progress bar, updated every 5 % of iterations.
"""

import logging
import os

import numpy as np
import numpyro

from heterodyne.cmc.draws_file import save_shard
from heterodyne.cmc.model import build_model_spec
from heterodyne.cmc.pooling import max_shard_size, pooled_points, shard_points
from heterodyne.cmc.sampling import NutsSettings, run_shard, shard_data
from heterodyne.cli import add_config_arguments, load_dataset_config
from heterodyne.data.dataset import load_dataset
from heterodyne.data.weights import PHI_TOLERANCE_DEG, check_weights_for, load_weights
from heterodyne.errors import InputError
from heterodyne.json_record import read_json_record
from heterodyne.lineage import check_lineage
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    add_config_arguments(parser)
    parser.add_argument("--data", required=True, help="dataset.h5 written by `heterodyne ingest`")
    parser.add_argument("--weights", required=True, help="weights.json written by `heterodyne weight`")
    parser.add_argument("--nlsq", required=True, help="nlsq.json written by `heterodyne fit-nlsq`")
    parser.add_argument("--shard", required=True, type=int, help="shard index k, 0 <= k < cmc.num_shards")
    parser.add_argument("--output", required=True, help="shard file to write (HDF5)")


def check_angles(reference, other, path, key):
    """Raise InputError unless ``other`` lists the dataset's angles ``reference`` [deg]."""
    other = np.asarray(other, float)
    if other.shape != reference.shape or not np.allclose(other, reference, rtol=0, atol=PHI_TOLERANCE_DEG):
        raise InputError(f"{path}: '{key}' = {other.tolist()} does not match the dataset's angles "
                         f"{reference.tolist()}; re-run the step that wrote {path} on this dataset")


def _use_one_cpu_device_per_chain(chains):
    """Expose min(chains, usable cores) CPU devices to JAX (effective before JAX's first use)."""
    numpyro.set_host_device_count(max(1, min(chains, len(os.sched_getaffinity(0)))))


def run(args):
    config, dataset_config = load_dataset_config(args)
    cmc = config["cmc"]
    num_shards = cmc["num_shards"]
    if not 0 <= args.shard < num_shards:
        raise InputError(f"--shard {args.shard}: must lie in [0, {num_shards - 1}] since {args.config} "
                         f"sets cmc.num_shards = {num_shards}")
    _use_one_cpu_device_per_chain(cmc["chains"])

    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("heterodyne").setLevel(logging.INFO)
    check_lineage({args.weights: [args.data], args.nlsq: [args.data, args.weights]})
    dataset = load_dataset(args.data)
    weights = load_weights(args.weights)
    nlsq = read_json_record(args.nlsq, ("phi",), "fit-nlsq")
    check_weights_for(dataset, weights, args.weights)
    check_angles(dataset.phi, nlsq.get("phi"), args.nlsq, "phi")

    points = pooled_points(dataset.c2, dataset.valid)
    if len(points) < num_shards * len(dataset.phi):
        raise InputError(f"{args.data}: only {len(points)} usable (t1 < t2) points for "
                         f"cmc.num_shards = {num_shards}; lower num_shards or widen the frame window")
    mine = shard_points(points, num_shards, cmc["seed"], args.shard)
    spec, names = build_model_spec(nlsq, cmc["prior"], len(dataset.phi), bounds=config["nlsq"]["bounds"],
                                   source=args.nlsq)
    data = shard_data(dataset, weights.sigma, mine, max_shard_size(points, num_shards, cmc["seed"]),
                      num_shards)
    result = run_shard(data, spec, names, NutsSettings.from_config(cmc), cmc["seed"], args.shard)

    provenance = provenance_record({"cmc": cmc, "nlsq": {"bounds": config["nlsq"]["bounds"]},
                                    "datasets": {args.dataset: dataset_config}},
                                   [args.data, args.weights, args.nlsq])
    save_shard(args.output, args.shard, num_shards, cmc["seed"], len(mine), result, provenance)
    return 0
