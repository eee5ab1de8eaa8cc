"""``process | fetch | retry`` for the mailboxes tidings reads (bounces, support mail): the
command line both share, each app saying what the three do."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

# sysexits.h EX_TEMPFAIL: the status every mail server's pipe delivery reads as "keep the
# message and try again later" (Postfix pipe(8) and local(8), Exim, Sendmail).  Any other
# non-zero status makes the server bounce the mail to its sender.
EX_TEMPFAIL = 75


def read_mail(path: str) -> bytes:
    """One message from ``path``, or from standard input (a mail server's pipe) without one."""
    try:
        if path:
            with open(path, "rb") as handle:  # noqa: PTH123 - a path from the command line
                return handle.read()
        return sys.stdin.buffer.read()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None


class MailboxCommand(BaseCommand):
    process_help = ""
    fetch_help = ""
    retry_help = ""
    default_limit = 100

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        process = actions.add_parser("process", help=self.process_help)
        process.add_argument("--file", default="", help="read it from this file instead")
        fetch = actions.add_parser("fetch", help=self.fetch_help)
        fetch.add_argument("--limit", type=int, default=self.default_limit)
        actions.add_parser("retry", help=self.retry_help)
        self.add_more_actions(actions)

    def add_more_actions(self, actions: Any) -> None:
        """A command's actions beyond the three (``tidings inbound serve``)."""

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "process":
            raw = read_mail(options["file"])
            try:
                self.process(raw)
            except DatabaseError as exc:
                # The database is down, locked or failing: the message is not lost if the mail
                # server keeps it, which it does on EX_TEMPFAIL.  The error's own text is not
                # repeated (a constraint error can quote the row's values).
                raise CommandError(
                    f"the database could not store the message ({type(exc).__name__}); "
                    "the mail server keeps it and tries again later",
                    returncode=EX_TEMPFAIL,
                ) from None
        elif action == "fetch":
            self.fetch(options["limit"])
        elif action == "retry":
            self.retry()
        else:
            self.more(action, options)

    def more(self, action: str, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def process(self, raw: bytes) -> None:
        raise NotImplementedError

    def fetch(self, limit: int) -> None:
        raise NotImplementedError

    def retry(self) -> None:
        raise NotImplementedError
