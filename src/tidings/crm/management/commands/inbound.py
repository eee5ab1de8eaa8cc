"""``tidings inbound process|fetch|retry|serve``: mail to the support address."""

import signal
import threading
from typing import Any

from django.core.management.base import CommandError

from tidings.crm.inbound import lmtp, mailbox, processing
from tidings.lib import running
from tidings.lib.mail_commands import MailboxCommand


class Command(MailboxCommand):
    help = "Support mail: process one message, fetch the support mailbox, retry, or serve LMTP."
    process_help = "process one mail from standard input (a mail server's pipe)"
    fetch_help = "fetch and process the mailbox in TIDINGS_INBOUND_MAILBOX_URL"
    retry_help = "process the unprocessed mail again"
    default_limit = mailbox.DEFAULT_LIMIT

    def add_more_actions(self, actions: Any) -> None:
        serve = actions.add_parser(
            "serve",
            help="receive the support and bounce addresses' mail over LMTP from your mail server",
        )
        serve.add_argument(
            "--listen",
            default=lmtp.DEFAULT_LISTEN,
            help=f"HOST:PORT or unix:/path/to/socket (default {lmtp.DEFAULT_LISTEN})",
        )

    def process(self, raw: bytes) -> None:
        row = processing.do_receive_inbound(raw, source="pipe")
        self.stdout.write(f"inbound mail #{row.pk}: {row.status}: {row.reason}")
        # Kept either way.  Only input that is not mail at all exits non-zero (the mail server
        # then reports it); mail we could not match exits 0, so nothing waits in its queue.
        if processing.is_not_mail(row):
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

    def more(self, action: str, options: dict[str, Any]) -> None:
        """``serve``: the LMTP server until SIGTERM or Ctrl-C, which it survives to answer the
        messages in hand (``crm.inbound.lmtp``)."""
        try:
            listen = lmtp.parse_listen(options["listen"])
            lmtp.require_base_url()
            receiver = lmtp.Receiver(listen)
        except lmtp.ListenError as exc:
            raise CommandError(str(exc)) from None
        running.hold()  # `tidings restore --replace` refuses while we run (lib/running.py)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: stop.set())
        try:
            receiver.start()
        except lmtp.ListenError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"receiving mail over LMTP on {receiver.address}", ending="\n")
        self.stdout.flush()
        while not stop.is_set() and receiver.is_alive():
            stop.wait(0.5)
        receiver.stop()
        if not stop.is_set():
            raise CommandError("the LMTP server stopped (see the log)")
