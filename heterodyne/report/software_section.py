"""The warning shown on the HTML pages when a run used other versions than requirements.lock.

requirements.lock holds the versions CI tested (``make`` installs exactly these); a result computed
with other versions of jax, numpyro, nlsq, ... is not covered by those tests. The warning lists
each differing package with the version the run used ("installed"), the pinned one ("locked") and
the records it was read from; nothing is shown when every version agrees or without a lock file.
"""

from heterodyne import software_lock
from heterodyne.report.markup import table


def lock_warning_html(recorded):
    """Warning paragraph and table (package, installed, locked, recorded by) for ``recorded``
    ({record name: {package: version}}, e.g. the ``versions`` of each step's provenance) against
    :data:`heterodyne.software_lock.LOCK_FILE`; "" when nothing differs."""
    rows = {}
    for where, versions in recorded.items():
        for mismatch in software_lock.lock_mismatches(versions, software_lock.LOCK_FILE):
            rows.setdefault(mismatch, []).append(where)
    if not rows:
        return ""
    return (
        '<p class="warn">Software differs from requirements.lock, the versions CI tested (<code>make</code> '
        "installs them): the records below were written with untested versions.</p>\n"
        + table(
            ["package", "installed", "locked", "recorded by"],
            [[*mismatch, ", ".join(where)] for mismatch, where in rows.items()],
        )
    )
