"""``tidings erasures reapply``: erase again everyone in the erasure journal (after pg_restore)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tidings.ops.journal import JournalError, do_reapply_erasures


class Command(BaseCommand):
    help = (
        "The erasure journal.  reapply: after restoring a database by other means (pg_restore), "
        "erase again the people erased since the dump was made, and suppress their addresses."
    )

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        reapply = subcommands.add_parser("reapply", help="apply the erasure journal(s)")
        reapply.add_argument(
            "--journal",
            type=Path,
            action="append",
            default=[],
            metavar="FILE",
            help="a journal file besides the configured one (repeatable)",
        )

    def handle(self, *args, subcommand: str, journal: list[Path], **options):
        try:
            result = do_reapply_erasures(
                [Path(settings.TIDINGS_ERASURE_JOURNAL), *journal], required=journal
            )
        except JournalError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Erasure journal: {result.entries} people; {result.erased} erased again; "
            f"{result.suppressed} address hashes added to the suppression list; "
            f"{result.kept_new_signups} kept (signed up again after their erasure)"
            + (
                f"; {result.bad_lines} line{'' if result.bad_lines == 1 else 's'} could not be "
                "read (a line torn by a crash is one)."
                if result.bad_lines
                else "."
            )
        )
