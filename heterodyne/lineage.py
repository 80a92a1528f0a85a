"""Which files a result was made from: its recorded provenance, checked against the files at hand.

Every result records the SHA-256 of its inputs (:mod:`heterodyne.provenance`). A step given a
file made from another dataset's (or another run's) inputs is refused here, naming both files.
Files without a recorded input list (written outside the workflow) are not checked.
"""

import json
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import h5py

from heterodyne.errors import InputError
from heterodyne.provenance import sha256_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTML_MARKER = '<script type="application/json" id="provenance">'
#: CSV tables (heterodyne.report.study_tables) carry their record as a leading comment line
CSV_PROVENANCE_PREFIX = "# provenance: "


def _png_text(path, keyword):
    """Value of the PNG text chunk (tEXt, zTXt or uncompressed/compressed iTXt) ``keyword``, or None."""
    data = Path(path).read_bytes()
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        at += 12 + length
        key, _, rest = body.partition(b"\0")
        if key.decode("latin-1") != keyword:
            continue
        if kind == b"tEXt":
            return rest.decode("latin-1")
        if kind == b"zTXt":
            return zlib.decompress(rest[1:]).decode("latin-1")
        if kind == b"iTXt":
            compressed, text = rest[0], rest[2:].split(b"\0", 2)[2]
            return (zlib.decompress(text) if compressed else text).decode("utf-8")
    return None


def read_provenance(path):
    """Provenance record (dict) stored in a result file, or None if it holds none.

    JSON: the ``provenance`` key; HDF5: the ``provenance`` attribute; PNG: the ``provenance`` text
    chunk; HTML: the embedded ``<script id="provenance">`` JSON; CSV: the ``# provenance: {...}``
    line among its leading comment lines. Unreadable files give None."""
    path = Path(path)
    try:
        if path.suffix == ".json":
            record = json.loads(path.read_text()).get("provenance")
        elif path.suffix in (".h5", ".hdf", ".hdf5"):
            with h5py.File(path, "r") as f:
                record = json.loads(f.attrs["provenance"]) if "provenance" in f.attrs else None
        elif path.suffix == ".png" and path.read_bytes()[:8] == PNG_SIGNATURE:
            text = _png_text(path, "provenance")
            record = json.loads(text) if text else None
        elif path.suffix == ".html":
            text = path.read_text(encoding="utf-8")
            start = text.find(HTML_MARKER)
            end = text.find("</script>", start)
            record = json.loads(text[start + len(HTML_MARKER) : end]) if start >= 0 and end >= 0 else None
        elif path.suffix == ".csv":
            record = _csv_provenance(path)
        else:
            record = None
    except (OSError, ValueError, AttributeError):
        return None
    return record if isinstance(record, dict) else None


def _csv_provenance(path):
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            if line.startswith(CSV_PROVENANCE_PREFIX):
                return json.loads(line[len(CSV_PROVENANCE_PREFIX) :])
    return None


@lru_cache(maxsize=64)
def _digest(path, size, mtime_ns):
    return sha256_file(path)


def digest(path):
    """SHA-256 of ``path``, computed once per file version in this process."""
    stat = Path(path).stat()
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


def check_made_from(product, sources):
    """InputError unless ``product`` records each file of ``sources``, as it is now, among its
    inputs; a product recording no inputs is not checked."""
    recorded = (read_provenance(product) or {}).get("input_sha256")
    if not recorded:
        return
    for source in sources:
        if digest(source) in recorded.values():
            continue
        same_name = [p for p in recorded if Path(p).name == Path(source).name]
        made_from = f"a different {same_name[0]}" if same_name else f"other inputs ({', '.join(recorded)})"
        raise InputError(
            f"{product}: made from {made_from}, not from {source} (SHA-256 differs); the "
            "two files belong to different datasets or runs: give the files of one run, or "
            f"re-run the step that writes {Path(product).name}"
        )


def check_lineage(links):
    """:func:`check_made_from` for every ``{product: [sources]}`` of ``links``."""
    for product, sources in links.items():
        check_made_from(product, sources)


def check_same_origin(paths):
    """InputError unless the files ``paths`` (combined into one result, e.g. CMC shards) record
    the same inputs, config SHA-256 and package version; files recording none are not checked."""
    reference = None
    for path in paths:
        record = read_provenance(path) or {}
        if "input_sha256" not in record:
            continue
        origin = {
            "inputs": sorted(record["input_sha256"].values()),
            "config": record.get("config_sha256"),
            "package version": record.get("package_version"),
        }
        if reference is None:
            reference = (path, origin)
            continue
        differ = [key for key in origin if origin[key] != reference[1][key]]
        if differ:
            what = {
                "inputs": "other inputs (SHA-256)",
                "config": "another config section",
                "package version": "another package version",
            }[differ[0]]
            raise InputError(
                f"{path}: made from {what} than {reference[0]}; files combined into one "
                "result must come from one run: re-run the step that wrote them"
            )
