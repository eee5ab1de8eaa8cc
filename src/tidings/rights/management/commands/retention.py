"""``tidings retention run [--dry-run]``: erase what the policy no longer lets us keep."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tidings.rights.retention import BATCH_SIZE, RetentionRun, run_retention


class Command(BaseCommand):
    help = "Retention.  run: erase every record whose retention period is over."

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        run = subcommands.add_parser(
            "run",
            help="erase expired records, kind by kind, then the contacts left with nothing",
        )
        run.add_argument(
            "--dry-run",
            action="store_true",
            help="print what would be removed, by kind, and change nothing",
        )
        run.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="ids per transaction")

    def handle(self, *args, subcommand, **options):
        if subcommand == "run":
            if options["batch_size"] < 1:
                raise CommandError("--batch-size must be at least 1")
            result = run_retention(
                dry_run=options["dry_run"], batch_size=options["batch_size"], actor_label="cli"
            )
            self.stdout.write(report(result))


def report(run: RetentionRun) -> str:
    verb = "would remove" if run.dry_run else "removed"
    lines = [
        "Retention run: dry run, nothing was changed." if run.dry_run else "Retention run:",
    ]
    width = max(len(k.label) for k in run.kinds)
    for kind in run.kinds:
        if kind.note:
            lines.append(f"  {kind.label:<{width}}  {kind.note}")
        else:
            lines.append(f"  {kind.label:<{width}}  {verb} {kind.count:,}")
    lines.append(f"  {'Contacts left with nothing':<{width}}  {verb} {run.contacts:,}")
    if not run.dry_run:
        lines.append(
            f"  in {run.seconds:.1f} s, {run.batches} batch(es); longest transaction "
            f"{run.longest_batch * 1000:.0f} ms"
        )
    return "\n".join(lines)
