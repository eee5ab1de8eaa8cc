"""``tidings audience purge-pending [--days N]``, ``tidings audience prune-fields [--yes]`` and
``tidings audience merge-contacts KEEP_ID DROP_ID [--yes] [--different-addresses]``:
housekeeping of the audience app."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from tidings.audience.actions import do_purge_unconfirmed, pending_days
from tidings.audience.merge import MergeError, check_merge, do_merge_contacts, plan
from tidings.audience.models import Contact
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
        merge = subcommands.add_parser(
            "merge-contacts",
            help="merge contact DROP_ID into KEEP_ID: list what would move; with --yes, move "
            "it and delete DROP_ID (one audit entry)",
        )
        merge.add_argument("keep_id", type=int, metavar="KEEP_ID")
        merge.add_argument("drop_id", type=int, metavar="DROP_ID")
        merge.add_argument("--yes", action="store_true", help="merge them")
        merge.add_argument(
            "--different-addresses",
            action="store_true",
            help="the two addresses differ but are one person's: KEEP_ID's address stays, "
            "DROP_ID's goes on no list",
        )

    def handle(self, *args, subcommand, **options):
        if subcommand == "merge-contacts":
            self._merge(options)
            return
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

    def _merge(self, options) -> None:
        keep_id, drop_id = options["keep_id"], options["drop_id"]
        contacts = Contact.objects.in_bulk([keep_id, drop_id])
        for pk in (keep_id, drop_id):
            if pk not in contacts:
                raise CommandError(f"no contact #{pk}")
        keep, drop = contacts[keep_id], contacts[drop_id]
        different = options["different_addresses"]
        try:
            if not options["yes"]:
                check_merge(keep, drop, different)
                moves = plan(keep, drop)
                listed = ", ".join(f"{name}: {n}" for name, n in moves.items()) or "no records"
                self.stdout.write(
                    f"Merging contact #{drop_id} into #{keep_id} would move {listed}; fill "
                    f"#{keep_id}'s empty fields from #{drop_id}'s, then delete #{drop_id}."
                    + (f" #{drop_id}'s address would go on no list." if different else "")
                    + " Run again with --yes to merge them."
                )
                return
            result = do_merge_contacts(keep, drop, actor="cli", different_addresses=different)
        except MergeError as exc:
            raise CommandError(exc.message) from None
        listed = ", ".join(f"{name}: {n}" for name, n in result.counts.items()) or "no records"
        self.stdout.write(f"Merged contact #{drop_id} into #{keep_id}: moved {listed}.")
