"""``tidings audience purge-pending [--days N]`` and ``tidings audience prune-fields [--yes]``:
housekeeping of the audience app."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tidings.audience.actions import do_purge_unconfirmed, pending_days
from tidings.audience.stored_fields import do_prune_fields, fields_outside_policy


class Command(BaseCommand):
    help = (
        "Audience housekeeping.  purge-pending: delete sign-ups nobody confirmed in time.  "
        "prune-fields: remove contact data no purpose of the policy collects any more."
    )

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        purge = subcommands.add_parser(
            "purge-pending",
            help="delete pending sign-ups older than --days (default TIDINGS_PENDING_DAYS), "
            "and the contacts that had nothing else",
        )
        purge.add_argument("--days", type=int, default=None)
        prune = subcommands.add_parser(
            "prune-fields",
            help="list the contact fields no purpose of the policy collects any more, and how "
            "many contacts hold each; with --yes, remove them (one audit entry)",
        )
        prune.add_argument("--yes", action="store_true", help="remove them")

    def handle(self, *args, subcommand, **options):
        if subcommand == "prune-fields":
            found = do_prune_fields() if options["yes"] else fields_outside_policy()
            if not found:
                self.stdout.write("Every field stored on contacts is one the policy collects.")
                return
            listed = ", ".join(f"{name} ({n} contact(s))" for name, n in found.items())
            if options["yes"]:
                self.stdout.write(f"Removed fields no purpose collects any more: {listed}.")
            else:
                self.stdout.write(
                    f"Fields no purpose collects any more: {listed}. Run again with --yes to "
                    "remove them."
                )
            return
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
