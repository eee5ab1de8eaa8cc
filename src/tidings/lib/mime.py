"""Parsing mail that anyone can send, without letting its shape crash the reader.

The email package recurses once per MIME level (and once per quoted ``message/rfc822``), so a
mail nested a few thousand levels deep raises ``RecursionError`` in the parser, or later in
whatever walks the tree.  ``parse`` reads the bytes and refuses a tree deeper than ``MAX_DEPTH``
or with more than ``MAX_PARTS`` parts (walked without recursing) with ``TooComplex``, whose
message names no one.  Real mail nests three to five levels and carries a handful of parts.
"""

from __future__ import annotations

import email
import email.policy
from email.message import Message
from typing import Any

MAX_DEPTH = 30  # MIME levels; a bounce quoting a forwarded message has about five
MAX_PARTS = 500


class TooComplex(ValueError):
    """The mail's MIME tree is too deep or too large to read safely; ``str()`` says which."""


def parse(raw: bytes, policy: Any = email.policy.compat32) -> Message:
    """The message in ``raw`` (``email.message_from_bytes`` with ``policy``), its shape checked."""
    try:
        message: Message = email.message_from_bytes(raw, policy=policy)
        message.keys()
    except RecursionError:
        raise TooComplex(f"its MIME parts are nested more than {MAX_DEPTH} levels deep") from None
    check_shape(message)
    return message


def check_shape(message: Message) -> None:
    """Refuse trees deeper than MAX_DEPTH or larger than MAX_PARTS, without recursing."""
    pending: list[tuple[Message, int]] = [(message, 1)]
    parts = 0
    while pending:
        part, depth = pending.pop()
        parts += 1
        if depth > MAX_DEPTH:
            raise TooComplex(f"its MIME parts are nested more than {MAX_DEPTH} levels deep")
        if parts > MAX_PARTS:
            raise TooComplex(f"it has more than {MAX_PARTS} MIME parts")
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend((child, depth + 1) for child in payload if isinstance(child, Message))
