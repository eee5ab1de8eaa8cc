"""``tidings inbound process|fetch|retry``: mail to the support address."""

import sys

from django.core.management.base import BaseCommand, CommandError

from tidings.crm.inbound import mailbox, processing
from tidings.crm.models import InboundMail


class Command(BaseCommand):
    help = "Support mail: process one message, fetch the support mailbox, or retry."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        process = actions.add_parser(
            "process", help="process one mail from standard input (a mail server's pipe)"
        )
        process.add_argument("--file", default="", help="read it from this file instead")
        fetch = actions.add_parser(
            "fetch", help="fetch and process the mailbox in TIDINGS_INBOUND_MAILBOX_URL"
        )
        fetch.add_argument("--limit", type=int, default=mailbox.DEFAULT_LIMIT)
        actions.add_parser("retry", help="process the unprocessed mail again")

    def handle(self, *args, action, **options):
        if action == "process":
            self._process(options["file"])
        elif action == "fetch":
            try:
                result = mailbox.fetch_configured(limit=options["limit"])
            except mailbox.MailboxError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                f"{result.fetched} message(s) fetched, {result.unprocessed} left unprocessed"
            )
        else:
            tried, processed = processing.retry_unprocessed()
            self.stdout.write(f"{tried} unprocessed mail(s) tried again: {processed} processed")

    def _process(self, path: str) -> None:
        try:
            if path:
                with open(path, "rb") as handle:  # noqa: PTH123 - a path from the command line
                    raw = handle.read()
            else:
                raw = sys.stdin.buffer.read()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        row = processing.do_receive_inbound(raw, source="pipe")
        self.stdout.write(f"inbound mail #{row.pk}: {row.status}: {row.reason}")
        # Kept either way.  Only input that is not mail at all exits non-zero (the mail server
        # then reports it); mail we could not match exits 0, so nothing waits in its queue.
        if row.status == InboundMail.Status.UNPROCESSED and row.reason.startswith("not a mail"):
            raise CommandError(row.reason)
