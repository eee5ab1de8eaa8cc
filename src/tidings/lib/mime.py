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
from collections.abc import Iterator
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


def walk(message: Message, *, attached: bool = True) -> Iterator[tuple[Message, int]]:
    """Every part of ``message`` with its depth (the message itself is 1), in order, without
    recursing (``Message.walk`` recurses).  ``attached=False`` does not look inside an attached
    mail (message/rfc822): a returned message's parts are not the report's own."""
    pending: list[tuple[Message, int]] = [(message, 1)]
    while pending:
        part, depth = pending.pop()
        yield part, depth
        if not attached and part.get_content_maintype() == "message":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend(
                (child, depth + 1) for child in reversed(payload) if isinstance(child, Message)
            )


def check_shape(message: Message) -> None:
    """Refuse trees deeper than MAX_DEPTH or larger than MAX_PARTS, without recursing."""
    for parts, (_part, depth) in enumerate(walk(message), start=1):
        if depth > MAX_DEPTH:
            raise TooComplex(f"its MIME parts are nested more than {MAX_DEPTH} levels deep")
        if parts > MAX_PARTS:
            raise TooComplex(f"it has more than {MAX_PARTS} MIME parts")
