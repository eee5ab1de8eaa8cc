"""Complaint reports: the Abuse Reporting Format (RFC 5965) of mailbox providers' feedback
loops (Yahoo, Microsoft's JMRP, Comcast...): a ``multipart/report`` whose second part is
``message/feedback-report`` and whose third is the message complained about (or its headers).
Gmail has no per-message feedback loop; its complaints arrive only as counts (Postmaster Tools).
"""

from __future__ import annotations

from email.message import Message
from email.parser import HeaderParser
from typing import cast

from .base import COMPLAINT, Finding, message_texts, rows_in

# Feedback types that are a person saying "this is spam" (RFC 5965 3.1; "not-spam" is the
# opposite, "auth-failure" is about DMARC, not a person).
COMPLAINT_TYPES = {"abuse", "fraud", "other", "virus"}


def feedback_part(message: Message) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            return part
    return None


def is_report(message: Message) -> bool:
    return feedback_part(message) is not None


def _fields(part: Message) -> Message:
    """The report's fields: the email package parses a ``message/*`` part as a message (its
    fields are then the first sub-message's headers) or leaves it as text."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return cast(Message, payload[0])
    text = payload if isinstance(payload, str) else ""
    return HeaderParser().parsestr(text.lstrip())


def parse(message: Message) -> list[Finding]:
    part = feedback_part(message)
    if part is None:
        return []
    fields = _fields(part)
    feedback_type = str(fields.get("Feedback-Type", "abuse")).strip().lower() or "abuse"
    if feedback_type not in COMPLAINT_TYPES:
        return []
    recipient = str(fields.get("Original-Rcpt-To") or fields.get("Removal-Recipient") or "")
    return [
        Finding(
            COMPLAINT,
            recipient=recipient.strip().strip("<>"),
            rows=rows_in(message_texts(message)),
            detail=f"feedback-type {feedback_type}"[:100],
        )
    ]
