"""A report that arrives as a mail (the MTA pipe, the bounce mailbox): a complaint (ARF) when
it is one, otherwise a delivery status notification.

Hostile or broken mail must not crash whoever reads it: ``read`` raises only ``Unreadable``
(with a reason that names no one), whatever the bytes are — empty, binary, MIME parts nested
thousands deep (the email package recurses once per level), or a million parts.  Real bounces
and complaints nest three or four levels and carry a handful of parts.
"""

from __future__ import annotations

import email
from email.message import Message

from . import arf, dsn
from .base import Finding, Unreadable

MAX_DEPTH = 30  # MIME levels; a DSN quoting a forwarded message has about five
MAX_PARTS = 500


def read(raw: bytes) -> Message:
    """The message in ``raw``; raises Unreadable when it is not a mail we can read safely."""
    if not raw or not raw.strip():
        raise Unreadable("the input is empty")
    if b"\x00" in raw[:4096]:
        raise Unreadable("the input is binary, not a mail message")
    try:
        message = email.message_from_bytes(raw)  # compat32: what flufl.bounce expects
        has_headers = bool(message.keys())
    except RecursionError:
        raise Unreadable(f"its MIME parts are nested more than {MAX_DEPTH} levels deep") from None
    except Exception as exc:  # the email package is lenient; anything it still raises is ours
        raise Unreadable(f"the mail parser failed on it ({type(exc).__name__})") from None
    if not has_headers:
        raise Unreadable("the input has no mail headers")
    _check_shape(message)
    return message


def _check_shape(message: Message) -> None:
    """Refuse trees deeper than MAX_DEPTH or larger than MAX_PARTS, without recursing."""
    pending: list[tuple[Message, int]] = [(message, 1)]
    parts = 0
    while pending:
        part, depth = pending.pop()
        parts += 1
        if depth > MAX_DEPTH:
            raise Unreadable(f"its MIME parts are nested more than {MAX_DEPTH} levels deep")
        if parts > MAX_PARTS:
            raise Unreadable(f"it has more than {MAX_PARTS} MIME parts")
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def parse(message: Message) -> list[Finding]:
    """What the report says.  A parser failing on an odd format raises; the caller keeps the
    report unprocessed with the error's type (``processing._process``)."""
    if arf.is_report(message):
        return arf.parse(message)
    return dsn.parse(message)
