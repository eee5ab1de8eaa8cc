"""Delivery status notifications, read with flufl.bounce.

flufl.bounce knows RFC 3464 DSNs and the usual non-standard formats (Postfix, Exim, qmail,
Microsoft...).  Its ``all_failures`` gives the addresses that failed for good (a hard bounce: the
RFC 3464 ``Action: failed``, a 5.x.x status) and those that are only delayed (a soft bounce:
``Action: delayed``, 4.x.x).
"""

from __future__ import annotations

import logging
from email.message import Message

from flufl.bounce import all_failures

from .base import HARD, SOFT, Finding, message_texts, rows_in, status_codes

# flufl.bounce logs every detector it tries at INFO: noise in a worker's log.
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)


def parse(message: Message) -> list[Finding]:
    """One finding per failed recipient ([] when the message is not a bounce we understand)."""
    temporary, permanent = all_failures(message)
    texts = message_texts(message)
    rows = rows_in(texts)
    codes = status_codes(texts)
    hard_code = next((c for c in codes if c.startswith("5")), "")
    soft_code = next((c for c in codes if c.startswith("4")), "")
    findings = [
        Finding(HARD, recipient=_text(address), rows=rows, detail=hard_code)
        for address in sorted(permanent)
    ]
    findings += [
        Finding(SOFT, recipient=_text(address), rows=rows, detail=soft_code)
        for address in sorted(temporary - permanent)
    ]
    return findings


def _text(address: bytes | str) -> str:
    if isinstance(address, bytes):
        return address.decode("utf-8", "replace")
    return str(address)
