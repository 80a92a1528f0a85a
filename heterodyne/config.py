"""Workflow configuration: load the YAML, validate it against the schema, fill defaults.

The schema ``heterodyne/config.schema.yaml`` is the single definition of every key (type, range,
default, meaning); ``workflow/schemas/config.schema.yaml`` is a link to it so that the Snakefile
and the CLI validate against the same file.
"""

from pathlib import Path

import jsonschema
import yaml

from heterodyne.errors import InputError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


def _validator():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    base = jsonschema.Draft202012Validator

    def fill_defaults(validator, properties, instance, schema_node):
        for key, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(key, sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema_node)

    cls = jsonschema.validators.extend(base, {"properties": fill_defaults})
    return cls(schema)


def validate_config(config, source="config"):
    """Validate ``config`` in place (defaults filled); raise InputError with the schema's message."""
    errors = sorted(_validator().iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise InputError(f"{source}: invalid config at '{where}': {err.message}; fix it as the schema "
                         f"{SCHEMA_PATH} describes")
    return config


def load_config(path):
    """Read and validate a workflow config file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found; pass --config with the workflow's config.yaml")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({err}); fix the syntax") from err
    return validate_config(config, source=str(path))


def dataset_section(config, name, path="config"):
    """The ``datasets.<name>`` entry of a validated config."""
    try:
        return config["datasets"][name]
    except KeyError:
        known = ", ".join(sorted(config.get("datasets", {}))) or "none"
        raise InputError(f"{path}: no dataset '{name}' under 'datasets' (known: {known})") from None
