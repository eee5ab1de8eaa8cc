"""``tidings inbound fetch`` and the worker: read the support mailbox and process what is there.

``TIDINGS_INBOUND_MAILBOX_URL`` says where, as for the bounce mailbox: ``imaps://user:password@
host[:port]/INBOX``, ``imap://…`` (STARTTLS when offered), ``pop3s://…`` or ``pop3://…``.  The
reading itself is the bounce mailbox's (``campaigns.bounces.mailbox.fetch``): each message is
removed from the mailbox only once it is stored here, so a crash in between reads it again at the
next fetch, and the Message-ID check keeps it from joining a conversation twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from tidings.campaigns.bounces.mailbox import DEFAULT_LIMIT, MailboxError, fetch, parse_url

from ..models import InboundMail
from .processing import do_receive_inbound

SETTING = "TIDINGS_INBOUND_MAILBOX_URL"
__all__ = ["DEFAULT_LIMIT", "FetchResult", "MailboxError", "fetch_configured"]


@dataclass(frozen=True)
class FetchResult:
    fetched: int
    unprocessed: int


def fetch_configured(*, limit: int = DEFAULT_LIMIT) -> FetchResult:
    """Fetch the support mailbox; raises MailboxError when it is not set or cannot be read."""
    url = str(getattr(settings, SETTING, "") or "")
    if not url:
        raise MailboxError(f"{SETTING} is not set: no support mailbox to read")
    try:
        config = parse_url(url)
    except MailboxError as exc:
        # The parser names the bounce mailbox's setting; this one is ours.
        raise MailboxError(str(exc).replace("TIDINGS_BOUNCE_MAILBOX_URL", SETTING)) from None
    unprocessed = 0

    def store(raw: bytes, source: str) -> None:
        nonlocal unprocessed
        row = do_receive_inbound(raw, source=source)
        unprocessed += row.status == InboundMail.Status.UNPROCESSED

    fetched = fetch(config, store, limit=limit)
    return FetchResult(fetched, unprocessed)
