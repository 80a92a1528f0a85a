"""`heterodyne audit`: check that a results folder is self-consistent (see heterodyne.audit).

Prints a pass/fail table; with --output also writes it as JSON (read by the index page). Exit
status 0 when every audited file passes, 1 otherwise.
"""

import json
from dataclasses import asdict
from pathlib import Path

from heterodyne.atomic import atomic_output
from heterodyne.audit import audit_results, audit_table
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    parser.add_argument("results_root", help="the results folder of a workflow run (e.g. results)")
    parser.add_argument("--output", help="also write the audit as JSON (e.g. results/audit.json)")


def run(args):
    audits, not_audited = audit_results(args.results_root)
    print(audit_table(audits, not_audited))
    passed = all(a.passed for a in audits)
    if args.output:
        record = {"passed": passed, "files": [{**asdict(a), "passed": a.passed} for a in audits],
                  "not_audited": not_audited,
                  "provenance": provenance_record({}, sorted(Path(args.results_root).glob("*/report.html")))}
        with atomic_output(args.output) as tmp:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return 0 if passed else 1
