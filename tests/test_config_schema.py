"""The config schema names the 14 physics parameters, their units and bounds exactly as the registry does."""

import pytest
import yaml

from heterodyne.config import SCHEMA_PATH
from heterodyne.core.parameters import PARAMETER_NAMES, PARAMETERS

#: names a cmc prior rule accepts besides the physics parameters (all contrasts, all offsets)
PRIOR_EXTRA = ("contrast", "offset")


def parameter_lists(node, where="#"):
    """(path, names) of every enum and every `properties` block of the schema that lists D0_ref."""
    if isinstance(node, dict):
        for key, child in node.items():
            if key == "enum" and isinstance(child, list) and "D0_ref" in child:
                yield where, tuple(child)
            elif key == "properties" and "D0_ref" in child:
                yield f"{where}/properties", tuple(child)
            yield from parameter_lists(child, f"{where}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from parameter_lists(child, f"{where}/{i}")


def test_every_parameter_list_of_the_schema_is_the_registry_in_its_order():
    found = dict(parameter_lists(yaml.safe_load(SCHEMA_PATH.read_text())))
    # simulate.parameters, nlsq.initial/fixed/bounds and the cmc prior's rules by name
    assert len(found) == 5, sorted(found)
    for path, names in found.items():
        expected = PARAMETER_NAMES + PRIOR_EXTRA if "prior" in path else PARAMETER_NAMES
        assert names == expected, path


@pytest.mark.parametrize("parameter", PARAMETERS, ids=lambda p: p.name)
def test_simulated_truth_has_the_registry_bounds_and_unit(parameter):
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    entry = schema["properties"]["simulate"]["properties"]["parameters"]["properties"][parameter.name]
    assert (entry["minimum"], entry["maximum"]) == (parameter.lower, parameter.upper)
    assert entry["description"].startswith(f"true {parameter.name} [{parameter.unit}]: ")
