from django.core.management.base import CommandError

from tidings.campaigns.bounces import mailbox, processing
from tidings.lib.mail_commands import MailboxCommand


class Command(MailboxCommand):
    help = "Bounces and complaints: process one report mail, or fetch the bounce mailbox."
    process_help = "process one bounce or complaint mail from standard input (MTA pipe)"
    fetch_help = "fetch and process the mailbox in TIDINGS_BOUNCE_MAILBOX_URL"
    retry_help = "try to match the unprocessed reports again"
    default_limit = mailbox.DEFAULT_LIMIT

    def process(self, raw: bytes) -> None:
        # Nothing at all is refused with a non-zero exit (the MTA keeps the message and says
        # so).  Anything else is kept as a report, as the mailbox path keeps it: processed, or
        # unprocessed with the reason (binary, no headers, nested too deep ...) for the
        # operator's list — never a traceback that loses it.
        if refused := processing.not_mail(raw):
            raise CommandError(refused)
        report = processing.do_record_inbound_mail(raw, source="pipe")
        self.stdout.write(f"report #{report.pk}: {report.status}: {report.reason}")

    def fetch(self, limit: int) -> None:
        try:
            result = mailbox.fetch_configured(limit=limit)
        except mailbox.MailboxError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{result.fetched} message(s) fetched: {result.processed} processed, "
            f"{result.unprocessed} unprocessed"
        )

    def retry(self) -> None:
        tried, processed = processing.retry_unprocessed()
        self.stdout.write(f"{tried} unprocessed report(s) tried again: {processed} processed")
