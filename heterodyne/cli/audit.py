"""`heterodyne audit`: check that a results folder is self-consistent (see heterodyne.audit).

Prints a pass/fail table; with --output also writes it as JSON (read by the index page). Exit
status 0 when every audited file passes, 1 otherwise.
"""

from pathlib import Path

from heterodyne.audit import audit_results, audit_table, save_audit
from heterodyne.provenance import provenance_record


def add_arguments(parser):
    parser.add_argument("results_root", help="the results folder of a workflow run (e.g. results)")
    parser.add_argument("--output", help="also write the audit as JSON (e.g. results/audit.json)")


def run(args):
    audits, not_audited = audit_results(args.results_root)
    print(audit_table(audits, not_audited))
    passed = all(a.passed for a in audits)
    if args.output:
        save_audit(
            args.output,
            audits,
            not_audited,
            provenance_record({}, sorted(Path(args.results_root).glob("*/report.html"))),
        )
    return 0 if passed else 1
