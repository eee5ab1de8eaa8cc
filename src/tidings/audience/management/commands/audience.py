"""``tidings audience purge-pending [--days N]``: housekeeping of the audience app."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tidings.audience.actions import do_purge_unconfirmed, pending_days


class Command(BaseCommand):
    help = "Audience housekeeping.  purge-pending: delete sign-ups nobody confirmed in time."

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        purge = subcommands.add_parser(
            "purge-pending",
            help="delete pending sign-ups older than --days (default TIDINGS_PENDING_DAYS), "
            "and the contacts that had nothing else",
        )
        purge.add_argument("--days", type=int, default=None)

    def handle(self, *args, subcommand, **options):
        if subcommand == "purge-pending":
            days = options["days"]
            if days is not None and days < 0:
                raise CommandError("--days must be 0 or more")
            result = do_purge_unconfirmed(days)
            self.stdout.write(
                f"Purged {result.subscriptions} unconfirmed sign-up(s) older than "
                f"{pending_days() if days is None else days} day(s): {result.contacts} contact(s) "
                f"and {result.events} consent event(s) deleted."
            )
