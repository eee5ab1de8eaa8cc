"""What every source's ``parse`` returns, and the search for our ids in a message."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message

from ..messages import row_for_message_id

HARD = "bounce_hard"
SOFT = "bounce_soft"
COMPLAINT = "complaint"
# A policy block (X.7.x): the receiver refused the message or its sender, not the address.
BLOCKED = "blocked"
# A refusal of our envelope sender (X.1.7, X.1.8, "Sender address rejected: Domain not found") or
# of our sending set-up (relaying denied): ours to fix, never the address's.
SENDER = "sender"


class Unreadable(ValueError):
    """What arrived is not a message at all (empty, binary garbage).  Never personal data."""


@dataclass
class Finding:
    """One thing a report says about one message we sent.

    ``rows`` are the (kind, id) queue rows our ids in the report point at (``d`` Delivery, ``o``
    OutgoingMessage), already checked against their HMAC; ``provider_id`` the ESP's message id.
    ``recipient`` is the address the report names ("" when it names none): used only to find
    the person, stored only as an HMAC.  ``detail`` is a status code or type, never personal.
    """

    kind: str
    recipient: str = ""
    rows: list[tuple[str, int]] = field(default_factory=list)
    provider_id: str = ""
    detail: str = ""
    event_id: str = ""


# Our Message-IDs (``<d123.4f2a9c01b7e3@example.com>``) and VERP tags
# (``bounces+d123.4f2a9c01b7e3@example.com``) share the row part: kind, id, dot, 12 hex digits.
_OUR_ID = re.compile(r"(?:^|[<+\s\"'=:(\[])([do]\d{1,18}\.[0-9a-f]{12})@", re.MULTILINE)


def rows_in(texts: Iterable[str]) -> list[tuple[str, int]]:
    """The queue rows named by our Message-IDs or VERP tags anywhere in ``texts``, in order of
    appearance, forged ones (a wrong HMAC) left out."""
    found: list[tuple[str, int]] = []
    for text in texts:
        for match in _OUR_ID.finditer(text):
            row = row_for_message_id(f"<{match.group(1)}@x>")
            if row is not None and row not in found:
                found.append(row)
    return found


def message_texts(message: Message) -> list[str]:
    """The headers and decoded text of every part of ``message`` (returned messages included),
    to search for our ids: Exim and Outlook quote the original headers in the body, others
    attach them as ``message/rfc822`` or ``text/rfc822-headers``, sometimes base64-encoded."""
    texts = []
    for part in message.walk():
        texts.append("".join(f"{name}: {value}\n" for name, value in part.items()))
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode("utf-8", "replace"))
        elif isinstance(payload, str):
            texts.append(payload)
    return texts


_STATUS = re.compile(r"^Status:\s*([245]\.\d{1,3}\.\d{1,3})", re.MULTILINE | re.IGNORECASE)


_REPLY = re.compile(r"\b[245]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})\b")


def status_codes(texts: Iterable[str]) -> list[str]:
    """Enhanced status codes (RFC 3463) given in ``Status:`` fields, or else in quoted server
    replies (``550 5.1.1 ...``: Exim's and qmail's bounces have no Status field)."""
    texts = list(texts)
    found = [match.group(1) for text in texts for match in _STATUS.finditer(text)]
    return found or [match.group(1) for text in texts for match in _REPLY.finditer(text)]


# Permanent failures (5.x.x) that say nothing against the address, so are soft bounces (they
# count towards the soft-bounce limit instead of suppressing at once): X.2.2 "mailbox full".
# RFC 3463 lists it as persistent, but a full mailbox is emptied, and Gmail, Yahoo and
# Microsoft answer "552 5.2.2" for mailboxes that take mail again days later.
# A 5.1.x status (5.1.1 user unknown, 5.1.10 null MX) is about the address: hard, whatever the
# words around it.  Without an enhanced status, the usual words of a full mailbox decide.
# X.7.x "security or policy status" (5.7.1 "message likely unsolicited", a blocklisted IP, 5.7.26
# a DMARC rejection) is neither: the receiver refused the message or us, not the address, so it
# is a policy block (``policy_block``), which never counts against the person.
_SOFT_STATUS = re.compile(r"^5\.2\.2$")
_POLICY_STATUS = re.compile(r"^5\.7\.\d{1,3}$")
_MAILBOX_FULL = re.compile(
    r"mailbox (is )?full|over ?quota|quota exceeded|exceeded (its|the) storage|"
    r"out of storage|insufficient (system )?storage",
    re.IGNORECASE,
)


def diagnostics(message: Message) -> list[str]:
    """What the report itself says went wrong, without the returned message (whose words,
    "no spam, ever", say nothing): the ``Diagnostic-Code`` fields of its delivery-status parts
    and its own text, cut where an MTA starts quoting our message inline (Exim, qmail)."""
    found: list[str] = []

    def visit(part: Message) -> None:
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers", "message/global-headers"):
            return
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else ():
                if isinstance(block, Message) and block.get("Diagnostic-Code"):
                    found.append(" ".join(str(block["Diagnostic-Code"]).split()))
            if not isinstance(blocks, list):
                text = part.get_payload(decode=True)
                if isinstance(text, bytes):
                    found.extend(_DIAGNOSTIC.findall(text.decode("utf-8", "replace")))
            return
        if part.is_multipart():
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    visit(sub)
            return
        if kind.startswith("text/"):
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
            found.append(" ".join(_QUOTED_MESSAGE.split(text, maxsplit=1)[0].split()))

    visit(message)
    return found


# Where Exim ("------ This is a copy of the message, including all the headers. ------") and
# qmail ("--- Below this line is a copy of the message.") start quoting what we sent.
_QUOTED_MESSAGE = re.compile(
    r"^-+ ?(This is a copy of the message|Below this line is a copy)", re.MULTILINE
)
_DIAGNOSTIC = re.compile(r"^Diagnostic-Code:[ \t]*(.*)$", re.MULTILINE | re.IGNORECASE)


def refuses_our_sender(status: str, texts: Iterable[str]) -> bool:
    """Whether a permanent failure with enhanced ``status`` ("" when none) refused our
    envelope sender or our sending set-up rather than the address: X.1.7 / X.1.8, or the
    report's words ("Sender address rejected", Exim's "Sender verify failed", "Relay access
    denied").  A status about the address itself (5.1.1 user unknown) says otherwise.
    ``texts``: the report's ``diagnostics``."""
    from ..transports.base import names_our_sender, names_our_setup

    if re.match(r"^5\.1\.[78]$", status):
        return True
    if status.startswith("5.1.") or status == "5.2.2":
        return False
    return any(names_our_sender(t) or names_our_setup(t) for t in texts)


def refused_by_policy_words(status: str, texts: Iterable[str]) -> bool:
    """Whether a permanent failure without a telling enhanced status ("" or 5.0.0) is a
    policy block in the words of the reply ("550 Message rejected as spam")."""
    from ..transports.base import names_a_policy

    return status in ("", "5.0.0") and any(names_a_policy(t) for t in texts)


def policy_block(status: str) -> bool:
    """Whether a permanent failure with enhanced ``status`` is a policy block (5.7.x)."""
    return _POLICY_STATUS.match(status) is not None


def permanent_but_soft(status: str, texts: Iterable[str] = ()) -> bool:
    """Whether a permanent failure with enhanced ``status`` ("5.2.2", "" when none) is a soft
    bounce: a full mailbox, never an unknown address nor a policy block (see above).  5.0.0
    ("undefined": what Postfix writes when the server's reply had no enhanced code, such as
    "552 Mailbox full") says no more than none."""
    if status.startswith("5.1."):
        return False
    if _SOFT_STATUS.match(status):
        return True
    return status in ("", "5.0.0") and any(_MAILBOX_FULL.search(text) for text in texts)
