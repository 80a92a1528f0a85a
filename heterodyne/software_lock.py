"""The versions CI tested, from requirements.lock, against the versions a run used.

requirements.lock lies at the root of the checkout that holds this package (``make`` installs
from it, ``make lock`` writes it): pip requirement lines ``name==version \\`` followed by
``--hash=sha256:...`` lines. A copy of the package installed without its checkout (a wheel, the
conda environment of workflow/envs/heterodyne.yaml) has no lock file beside it, and then nothing
is compared.
"""

import re
from pathlib import Path

import heterodyne

#: requirements.lock of the checkout holding this package (may not exist)
LOCK_FILE = Path(heterodyne.__file__).parents[1] / "requirements.lock"

_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _normalized_name(name):
    """Package name as PyPI compares them (PEP 503): lower case, runs of -_. as one -."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_path):
    """{normalized package name: pinned version (str)} of every ``name==version`` line of the
    lock file; {} when the file does not exist."""
    path = Path(lock_path)
    if not path.is_file():
        return {}
    pins = (_PIN.match(line) for line in path.read_text().splitlines())
    return {_normalized_name(pin[1]): pin[2] for pin in pins if pin}


def lock_mismatches(versions, lock_path):
    """[(package, installed, locked)] for every package of ``versions`` ({name: version}, as
    :func:`heterodyne.provenance.package_versions` gives them) that the lock file pins to another
    version, in the order of ``versions``; versions are compared as text. Packages the lock does
    not pin are skipped; [] without a lock file."""
    pins = locked_versions(lock_path)
    found = []
    for name, installed in versions.items():
        locked = pins.get(_normalized_name(name))
        if locked is not None and installed != locked:
            found.append((name, installed, locked))
    return found
