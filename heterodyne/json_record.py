"""The JSON reader and the joint-record view the result files' owners share (e.g.
:mod:`heterodyne.fit.results`, :mod:`heterodyne.cmc.summary_file`); no other module uses them."""

import json
from dataclasses import dataclass
from pathlib import Path

from heterodyne.errors import InputError


def read_json_record(path, required, rerun):
    """JSON object from ``path`` holding every key of ``required``; else InputError naming the
    file and the ``heterodyne {rerun}`` step that writes it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read JSON ({err}); re-run `heterodyne {rerun}`") from err
    missing = [key for key in required if key not in record]
    if missing:
        raise InputError(
            f"{path}: missing key(s) {', '.join(missing)}; expected the "
            f"`heterodyne {rerun}` result format, re-run that step"
        )
    return record


@dataclass(frozen=True)
class JointRecord:
    """A joint multi-q result file as read back: its ``path`` and ``record``, the checked dict."""

    path: Path
    record: dict

    @property
    def parameters(self):
        return self.record["parameters"]

    @property
    def shared_parameters(self):
        """Names of the parameters all q bins share."""
        return list(self.record["shared_parameters"])
