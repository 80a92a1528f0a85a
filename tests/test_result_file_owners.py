"""One owner per result file: only the module that defines a result file's layout opens that file.

Every module of heterodyne/ is parsed with ``ast``. A call that opens or parses a file
(``h5py.File``, ``open``, ``json.load``/``loads``, ``read_text``, ``read_bytes``, ``np.load``,
``yaml.safe_load``, the owners' shared ``read_json_record``) may appear only in an owner of a
result file (:data:`OWNERS`) or in a module listed in :data:`OTHER_READERS` with what it reads
(no result file's content). A call whose arguments or receiver name a result file literally
(e.g. ``(folder / "nlsq.json").read_text()``) must be in that file's owner, and
``read_json_record`` is called by owners only.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "heterodyne"

#: result file (relative to results/<dataset>/<q folder>/, results/<dataset>/ or results/) -> its owner
OWNERS = {
    "dataset.h5": "data/dataset.py",
    "q_bins.json": "data/q_bins.py",
    "weights.json": "weighting/weights_file.py",
    "nlsq.json": "fit/results.py",
    "nlsq.h5": "fit/results.py",
    "joint_q/nlsq.json": "fit/joint_q_results.py",
    "joint_q/nlsq.h5": "fit/joint_q_results.py",
    "cmc/shard_k.h5": "cmc/draws_file.py",
    "cmc/combined.h5": "cmc/draws_file.py",
    "joint_q/cmc/combined.h5": "cmc/draws_file.py",
    "cmc/summary.json": "cmc/summary_file.py",
    "joint_q/cmc/summary.json": "cmc/summary_file.py",
    "cross_q.json": "study/cross_q_record.py",
    "audit.json": "audit.py",
    "parameters.csv": "report/study_tables.py",
    "fit_quality.csv": "report/study_tables.py",
    "benchmarks/rule.tsv": "report/run_times.py",  # written by Snakemake, read here only
}
#: modules that open files other than the result files' content, and what they read
OTHER_READERS = {
    "atomic.py": "the temporary file an owner writes an HDF5 result through",
    "cli/__init__.py": "the --settings JSON string of the command line",
    "config.py": "the config schema (config/schema.yaml)",
    "software_lock.py": "requirements.lock",
    "plots/style.py": "the caption templates plots/captions/*.rst",
    "data/aps.py": "the raw APS 8-ID-I HDF5 file",
    "provenance.py": "any input file, to hash it (SHA-256)",
    "lineage.py": "the provenance record of any output (JSON, HDF5, PNG, HTML, CSV), never its results",
    "json_record.py": "the owners' shared JSON reader (only owners call read_json_record)",
    "report/collect.py": "figures/*.png and their .rst captions, embedded in the report",
    "report/cross_q_section.py": "cross_q/*.png and their .rst captions, embedded in the index page",
    "report/screen_png.py": "PNG bytes already read (Image.open of an in-memory buffer)",
}
#: attribute calls that open or parse a file (x.File, json.load, path.read_text, ...)
OPENING_ATTRIBUTES = {
    "File",
    "open",
    "load",
    "loads",
    "safe_load",
    "read_text",
    "read_bytes",
    "loadtxt",
    "genfromtxt",
    "read_csv",
}
#: plain calls that open or parse a file
OPENING_NAMES = {"open", "read_json_record"}


def _opening_calls(tree):
    """(call node, called name) of every call in ``tree`` that opens or parses a file."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in OPENING_ATTRIBUTES:
            yield node, func.attr
        elif isinstance(func, ast.Name) and func.id in OPENING_NAMES:
            yield node, func.id


def _named_files(call):
    """Names (without folder) of the result files that a string constant in the call's arguments or
    receiver names."""
    parts = [*call.args, *(k.value for k in call.keywords)]
    if isinstance(call.func, ast.Attribute):
        parts.append(call.func.value)
    constants = [
        n.value for part in parts for n in ast.walk(part) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    return {Path(file).name for text in constants for file in OWNERS if text.endswith(Path(file).name)}


def violations(module, source):
    """Problems of the module ``module`` (path relative to heterodyne/) with the text ``source``."""
    owned = set(OWNERS.values())
    problems = []
    for call, name in _opening_calls(ast.parse(source)):
        where = f"heterodyne/{module}:{call.lineno}"
        if module not in owned and module not in OTHER_READERS:
            problems.append(f"{where}: {name}() in a module that owns no result file; read it through its owner")
        if name == "read_json_record" and module not in owned:
            problems.append(f"{where}: read_json_record() outside a result file's owner")
        for named in _named_files(call):
            owners = {owner for file, owner in OWNERS.items() if Path(file).name == named}
            if module not in owners:
                problems.append(f"{where}: opens {named}, owned by {' or '.join(sorted(owners))}")
    return problems


def package_modules():
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_the_owner_opens_a_result_file():
    problems = [p for module in package_modules() for p in violations(module, (PACKAGE / module).read_text())]
    assert not problems, "\n".join(problems)


def test_every_listed_module_exists_and_opens_files():
    for module in {*OWNERS.values(), *OTHER_READERS}:
        path = PACKAGE / module
        assert path.is_file(), module
        assert any(True for _ in _opening_calls(ast.parse(path.read_text()))), f"{module} opens no file"


@pytest.mark.parametrize(
    "module, source, expected",
    [
        # a new reader of nlsq.json outside fit/results.py, by its literal name
        (
            "report/new_page.py",
            'import json\nrecord = json.loads((folder / "nlsq.json").read_text())\n',
            "opens nlsq.json, owned by fit/joint_q_results.py or fit/results.py",
        ),
        # a new HDF5 reader with the path in a variable
        (
            "plots/new_figure.py",
            "import h5py\nwith h5py.File(path) as f:\n    pass\n",
            "File() in a module that owns no result file",
        ),
        # the shared JSON reader from a module that is not an owner
        (
            "report/collect.py",
            'record = read_json_record(path, ("parameters",), "fit-nlsq")\n',
            "read_json_record() outside a result file's owner",
        ),
        # an owner opening another owner's file
        (
            "fit/results.py",
            'import json\nsummary = json.loads(open(folder + "/cmc/summary.json").read())\n',
            "opens summary.json, owned by cmc/summary_file.py",
        ),
    ],
)
def test_a_new_reader_outside_the_owner_is_flagged(module, source, expected):
    assert any(expected in problem for problem in violations(module, source)), violations(module, source)


def test_the_owner_may_open_its_file():
    source = 'import json\nrecord = json.loads((folder / "nlsq.json").read_text())\n'
    assert violations("fit/results.py", source) == []
    assert violations("fit/joint_q_results.py", source) == []
