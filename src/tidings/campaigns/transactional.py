"""Transactional mail: one saved ``Template`` rendered for one contact and queued ahead of campaign
mail (the engine's side of ``POST /api/tx``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidings.audience.tokens import preferences_url, unsubscribe_url

from .mail import sender_from_header
from .models import Campaign, OutgoingMessage
from .queue import enqueue_message
from .rendering import CompiledMessage, MessageLinks


def enqueue_transactional(
    template: Any,
    contact: Any,
    context: Mapping[str, Any] | None = None,
    *,
    sender: Any = None,
    priority: int = OutgoingMessage.PRIORITY_NORMAL,
) -> OutgoingMessage:
    """Send ``template`` (a campaigns ``Template``) to one contact, ahead of campaign mail.

    Rendered now, in the caller's transaction, with the contact's own links; ``context`` (extra
    template variables) is passed to the renderer.  ``sender``: a ``Sender`` for the From line
    (default: the installation's address).  Raises ``rendering.TemplateProblem``."""
    compiled = CompiledMessage.for_campaign(
        Campaign(
            name=template.name,
            subject=template.subject,
            body=template.body,
            text_body=template.text_body,
            format=template.format,
            layout=template.layout,
        )
    )
    links = MessageLinks(
        unsubscribe_url=unsubscribe_url(contact),
        preferences_url=preferences_url(contact),
        view_url="",
    )
    rendered = compiled.render(contact, links, context=context)
    return enqueue_message(
        contact,
        kind=f"transactional:{template.pk}",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        from_email=sender_from_header(sender),
        priority=priority,
    )
