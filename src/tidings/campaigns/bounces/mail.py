"""A report that arrives as a mail (the MTA pipe, the bounce mailbox): a complaint (ARF) when
it is one, otherwise a delivery status notification.

Hostile or broken mail must not crash whoever reads it: ``read`` raises only ``Unreadable``
(with a reason that names no one), whatever the bytes are — empty, binary, MIME parts nested
thousands deep (the email package recurses once per level), or a million parts.  Real bounces
and complaints nest three or four levels and carry a handful of parts.
"""

from __future__ import annotations

from email.message import Message

from tidings.lib import mime

from . import arf, dsn
from .base import Finding, Unreadable


def read(raw: bytes) -> Message:
    """The message in ``raw``; raises Unreadable when it is not a mail we can read safely."""
    if not raw or not raw.strip():
        raise Unreadable("the input is empty")
    if b"\x00" in raw[:4096]:
        raise Unreadable("the input is binary, not a mail message")
    try:
        message = mime.parse(raw)  # compat32: what flufl.bounce expects
    except mime.TooComplex as exc:
        raise Unreadable(str(exc)) from None
    except Exception as exc:  # the email package is lenient; anything it still raises is ours
        raise Unreadable(f"the mail parser failed on it ({type(exc).__name__})") from None
    if not message.keys():
        raise Unreadable("the input has no mail headers")
    return message


def parse(message: Message) -> list[Finding]:
    """What the report says.  A parser failing on an odd format raises; the caller keeps the
    report unprocessed with the error's type (``processing._process``)."""
    if arf.is_report(message):
        return arf.parse(message)
    return dsn.parse(message)
