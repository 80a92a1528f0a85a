"""Workflow configuration: validate it (or one section of it) against the schema, fill defaults.

The schema ``heterodyne/config.schema.yaml`` is the single definition of every key (type, range,
default, meaning); ``workflow/schemas/config.schema.yaml`` is a link to it so that the Snakefile
and the CLI validate against the same file.
"""

import math
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


def non_finite(node, where=()):
    """(key path, value) of the first NaN or infinite number in a loaded YAML tree, or None.

    JSON Schema cannot refuse these: every comparison with NaN is false, and inf is a number."""
    if isinstance(node, float) and not math.isfinite(node):
        return "/".join(map(str, where)), node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found = non_finite(child, (*where, key))
        if found:
            return found
    return None


def _raise_first(errors, source, prefix=()):
    """InputError with the schema's message for the first of ``errors`` (none: return); the key
    path shown starts with ``prefix``."""
    errors = sorted(errors, key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    where = "/".join(str(p) for p in (*prefix, *err.absolute_path)) or "(top level)"
    # a pattern's regex (or a `not` schema) says little; its description says what is allowed
    if err.validator == "pattern" and "description" in err.schema:
        message = f"{err.instance!r} is not allowed: {' '.join(err.schema['description'].split())}"
    elif err.validator == "not" and "description" in err.validator_value:
        message = " ".join(err.validator_value["description"].split())
    else:
        message = err.message
    raise InputError(f"{source}: invalid config at '{where}': {message}; fix it as the schema {SCHEMA_PATH} describes")


def _check_finite(config, source):
    found = non_finite(config)
    if found:
        raise InputError(f"{source}: '{found[0]}' = {found[1]} is not a finite number; give a finite value")


def validate_config(config, source="config"):
    """Validate ``config`` in place (defaults filled); raise InputError with the schema's message
    (or naming a NaN/inf value)."""
    _check_finite(config, source)
    _raise_first(_validator().iter_errors(config), source)
    return config


def validate_section(name, value, source="--settings"):
    """Validate one section of the config in place (defaults filled) against its part of the
    schema: a top-level key (``nlsq``, ``cmc``, ...), ``dataset`` (one entry under ``datasets``)
    or ``config`` (the whole config).
    Error paths start with ``name``."""
    validator = _validator()
    properties = validator.schema["properties"]
    if name == "config":
        return validate_config(value, source)
    if name == "dataset":
        schema = properties["datasets"]["additionalProperties"]
    elif name in properties:
        schema = properties[name]
    else:
        raise ValueError(f"no config section {name!r} in {SCHEMA_PATH}")
    _check_finite({name: value}, source)
    _raise_first(validator.evolve(schema=schema).iter_errors(value), source, prefix=(name,))
    return value
