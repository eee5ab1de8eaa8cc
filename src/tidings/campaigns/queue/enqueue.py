"""One-off messages (system mail, transactional mail): queued ahead of campaign mail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..config import DeliveryConfig
from ..models import OutgoingMessage


def default_transport() -> str:
    """The transport one-off messages use unless they name one (``TIDINGS_SYSTEM_TRANSPORT``)."""
    return DeliveryConfig.from_settings().system_transport


def new_message(
    contact: Any,
    *,
    kind: str,
    subject: str,
    text: str,
    html: str = "",
    from_email: str,
    headers: Mapping[str, str] | None = None,
    priority: int = OutgoingMessage.PRIORITY_NORMAL,
    transport: str,
    attachments: Sequence[Mapping[str, str]] = (),
) -> OutgoingMessage:
    """The row ``enqueue_message`` writes, unsaved (``transport`` as given): for callers that
    queue many at once with ``bulk_create`` in their own transaction (the journey engine)."""
    return OutgoingMessage(
        kind=kind[:60],
        priority=priority,
        contact_id=contact.pk,
        from_email=from_email,
        subject=" ".join(subject.split())[:998],
        text=text,
        html=html,
        headers=dict(headers or {}),
        attachments=[dict(a) for a in attachments],
        transport=transport,
    )


def enqueue_message(
    contact: Any,
    *,
    kind: str,
    subject: str,
    text: str,
    html: str = "",
    from_email: str,
    headers: Mapping[str, str] | None = None,
    priority: int = OutgoingMessage.PRIORITY_NORMAL,
    transport: str = "",
    attachments: Sequence[Mapping[str, str]] = (),
) -> OutgoingMessage:
    """Queue one message to ``contact``, sent by the delivery engine before any campaign mail.

    The row is written in the caller's transaction: if it rolls back, nothing is sent; once it
    commits, the message survives any crash until it is sent.  The contact's address is read
    when the message is sent (after an erasure, the message is skipped).  ``attachments``: text
    files, each ``{"filename", "content_type", "content"}`` (a calendar invitation).
    ``transport``: the transport to use (default: ``TIDINGS_SYSTEM_TRANSPORT``, else any).
    """
    message = new_message(
        contact,
        kind=kind,
        subject=subject,
        text=text,
        html=html,
        from_email=from_email,
        headers=headers,
        priority=priority,
        transport=transport or default_transport(),
        attachments=attachments,
    )
    message.save(force_insert=True)
    return message
