"""``tidings inbound process|fetch|retry``: mail to the support address."""

from django.core.management.base import CommandError

from tidings.crm.inbound import mailbox, processing
from tidings.crm.models import InboundMail
from tidings.lib.mail_commands import MailboxCommand


class Command(MailboxCommand):
    help = "Support mail: process one message, fetch the support mailbox, or retry."
    process_help = "process one mail from standard input (a mail server's pipe)"
    fetch_help = "fetch and process the mailbox in TIDINGS_INBOUND_MAILBOX_URL"
    retry_help = "process the unprocessed mail again"
    default_limit = mailbox.DEFAULT_LIMIT

    def process(self, raw: bytes) -> None:
        row = processing.do_receive_inbound(raw, source="pipe")
        self.stdout.write(f"inbound mail #{row.pk}: {row.status}: {row.reason}")
        # Kept either way.  Only input that is not mail at all exits non-zero (the mail server
        # then reports it); mail we could not match exits 0, so nothing waits in its queue.
        if row.status == InboundMail.Status.UNPROCESSED and row.reason.startswith("not a mail"):
            raise CommandError(row.reason)

    def fetch(self, limit: int) -> None:
        try:
            result = mailbox.fetch_configured(limit=limit)
        except mailbox.MailboxError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{result.fetched} message(s) fetched, {result.unprocessed} left unprocessed"
        )

    def retry(self) -> None:
        tried, processed = processing.retry_unprocessed()
        self.stdout.write(f"{tried} unprocessed mail(s) tried again: {processed} processed")
