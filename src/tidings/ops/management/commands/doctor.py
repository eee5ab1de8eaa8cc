"""``tidings doctor [--json] [--only NAME ...]``: check this deployment; exit 1 on a failure."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from tidings.ops import doctor


class Command(BaseCommand):
    help = (
        "Check this deployment (settings, database, policy, mail servers, workers, disk, Redis, "
        "backups) and say how to fix each problem.  Exit status 1 when a check fails; warnings "
        "do not fail."
    )
    requires_system_checks: list[str] = []  # the doctor runs them itself, as one of its checks

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the findings as JSON")
        parser.add_argument(
            "--only", nargs="+", metavar="CHECK", help="run only these checks (by name)"
        )

    def handle(self, *args, json: bool, only: list[str] | None, **options):
        if only:
            known = {check.name for check in doctor.load_checks()}
            unknown = sorted(set(only) - known)
            if unknown:
                self.stderr.write(
                    f"tidings doctor: no check named {', '.join(unknown)} "
                    f"(there are: {', '.join(sorted(known))})"
                )
                sys.exit(2)
        # `tidings` adds --traceback to every command (cli.py); only one the person typed may
        # let a broken check stop the others (the database down stopped every check after it).
        from tidings.lib.arguments import traceback_added

        trace = options["traceback"] and not traceback_added()
        findings = doctor.run_checks(only, trace=trace)
        self.stdout.write(doctor.as_json(findings) if json else doctor.as_text(findings))
        if doctor.failed(findings):
            sys.exit(1)
