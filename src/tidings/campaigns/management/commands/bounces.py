import sys

from django.core.management.base import BaseCommand, CommandError

from tidings.campaigns.bounces import mailbox, processing


class Command(BaseCommand):
    help = "Bounces and complaints: process one report mail, or fetch the bounce mailbox."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        process = actions.add_parser(
            "process", help="process one bounce or complaint mail from standard input (MTA pipe)"
        )
        process.add_argument("--file", default="", help="read it from this file instead")
        fetch = actions.add_parser(
            "fetch", help="fetch and process the mailbox in TIDINGS_BOUNCE_MAILBOX_URL"
        )
        fetch.add_argument("--limit", type=int, default=mailbox.DEFAULT_LIMIT)
        actions.add_parser("retry", help="try to match the unprocessed reports again")

    def handle(self, *args, action, **options):
        if action == "process":
            self._process(options["file"])
        elif action == "fetch":
            try:
                result = mailbox.fetch_configured(limit=options["limit"])
            except mailbox.MailboxError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(
                f"{result.fetched} message(s) fetched: {result.processed} processed, "
                f"{result.unprocessed} unprocessed"
            )
        else:
            tried, processed = processing.retry_unprocessed()
            self.stdout.write(f"{tried} unprocessed report(s) tried again: {processed} processed")

    def _process(self, path: str) -> None:
        try:
            if path:
                with open(path, "rb") as handle:  # noqa: PTH123 - a path from the command line
                    raw = handle.read()
            else:
                raw = sys.stdin.buffer.read()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        # Nothing at all is refused with a non-zero exit (the MTA keeps the message and says
        # so).  Anything else is kept as a report, as the mailbox path keeps it: processed, or
        # unprocessed with the reason (binary, no headers, nested too deep ...) for the
        # operator's list — never a traceback that loses it.
        if not raw.strip():
            raise CommandError("not a mail message: the input is empty")
        report = processing.do_record_inbound_mail(raw, source="pipe")
        self.stdout.write(f"report #{report.pk}: {report.status}: {report.reason}")
