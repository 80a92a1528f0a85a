"""Config values the schema alone let through (unsafe dataset names, NaN/inf numbers) and checks
across keys, each refused with one line naming the file and the key."""

import pytest
import yaml

from heterodyne.cmc.pooling import shard_count
from heterodyne.config import validate_config
from heterodyne.errors import InputError


@pytest.mark.parametrize("name", ["..", ".", "a/b", "", ".hidden", "index.html", "report.html", "audit.json"])
def test_dataset_names_that_are_not_plain_folder_names_are_refused(name):
    # "..", "." and "a/b" would put results outside results/<name>/; the last three collide with
    # files the workflow writes into results/ itself
    with pytest.raises(InputError, match=r"config: invalid config at 'datasets'"):
        validate_config({"datasets": {name: {"file": "raw.hdf"}}})


def test_plain_dataset_names_are_accepted():
    names = ["gel_25C", "run-2.v3", "A1"]
    config = validate_config({"datasets": {n: {"file": "raw.hdf"} for n in names}})
    assert sorted(config["datasets"]) == sorted(names)


@pytest.mark.parametrize(
    "text, key, value",
    [
        ("datasets:\n  demo: {file: raw.hdf, time_origin: .inf}\n", "datasets/demo/time_origin", "inf"),
        ("datasets:\n  demo: {file: raw.hdf, q: .nan}\n", "datasets/demo/q", "nan"),
        ("datasets:\n  demo: {file: raw.hdf, phi: [0.0, -.inf]}\n", "datasets/demo/phi/1", "-inf"),
        ("datasets:\n  demo: {file: raw.hdf}\nnlsq: {initial: {v0: .NaN}}\n", "nlsq/initial/v0", "nan"),
    ],
    ids=["inf", "nan", "list-item", "nested"],
)
def test_non_finite_numbers_are_refused_naming_the_key(tmp_path, text, key, value):
    path = tmp_path / "config.yaml"
    with pytest.raises(InputError) as caught:
        validate_config(yaml.safe_load(text), source=str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: '{key}' = {value} is not a finite number") and "\n" not in message


def one_line_error(path, text):
    """The InputError message of validate_config on the YAML ``text`` of config file ``path``; it
    has one line."""
    with pytest.raises(InputError) as caught:
        validate_config(yaml.safe_load(text), source=str(path))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_num_shards_and_points_per_shard_together_are_refused_in_one_line(tmp_path):
    path = tmp_path / "config.yaml"
    message = one_line_error(
        path, "datasets:\n  demo: {file: raw.hdf}\ncmc: {num_shards: 4, points_per_shard: 100000}\n"
    )
    assert (
        message.startswith(f"{path}: invalid config at 'cmc': give cmc.num_shards or cmc.points_per_shard, not both")
        and "remove one of the two keys" in message
    )


def test_either_shard_key_alone_is_accepted_and_the_default_chooses_k_from_the_data():
    config = validate_config({"datasets": {"demo": {"file": "raw.hdf"}}, "cmc": {"points_per_shard": 100000}})
    assert config["cmc"]["points_per_shard"] == 100000 and config["cmc"]["num_shards"] is None
    config = validate_config({"datasets": {"demo": {"file": "raw.hdf"}}, "cmc": {"num_shards": 3}})
    assert config["cmc"]["num_shards"] == 3 and shard_count(10**6, config["cmc"]) == 3
    default = validate_config({"datasets": {"demo": {"file": "raw.hdf"}}})["cmc"]
    assert default["num_shards"] is None and default["points_per_shard"] == 50000
    assert [shard_count(n, default) for n in (48_330, 50_000, 50_001, 1_498_500)] == [1, 1, 2, 30]
