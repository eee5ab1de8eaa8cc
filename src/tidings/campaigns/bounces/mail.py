"""A report that arrives as a mail (the MTA pipe, the bounce mailbox): a complaint (ARF) when
it is one, otherwise a delivery status notification."""

from __future__ import annotations

import email
from email.message import Message

from . import arf, dsn
from .base import Finding, Unreadable


def read(raw: bytes) -> Message:
    """The message in ``raw``; raises Unreadable when it is not a mail at all."""
    if not raw or not raw.strip():
        raise Unreadable("the input is empty")
    if b"\x00" in raw[:4096]:
        raise Unreadable("the input is binary, not a mail message")
    message = email.message_from_bytes(raw)  # compat32: what flufl.bounce expects
    if not message.keys():
        raise Unreadable("the input has no mail headers")
    return message


def parse(message: Message) -> list[Finding]:
    if arf.is_report(message):
        return arf.parse(message)
    return dsn.parse(message)
