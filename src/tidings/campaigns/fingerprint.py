"""What an operator confirmed, as two hashes: what the mail says, and who it goes to.

With ``TIDINGS_SEND_NEEDS_SECOND_OPERATOR`` a second operator confirms a campaign; after that its
own fields cannot change (only drafts are edited), but what it *reads* when it goes out can: the
layout, the template whose body or layout it takes, its sender, the segments and lists that
make its audience.  ``do_schedule`` stores both hashes on the campaign when it is confirmed; a
change to any of those things afterwards is caught twice:

- at once, by the action that saves the layout, template, segment or list
  (``campaigns.reconfirm.void_changed_confirmations``): the campaign goes back to draft (or, if
  it is already sending, pauses) with the reason on its page, and needs confirming again;
- when it is sent, as a safety net for a change made any other way or racing the confirmation:
  ``lifecycle.do_start`` refuses to start a campaign whose hashes differ, and the delivery
  engine refuses to prepare (and pauses) a campaign whose content hash differs.

The content hash covers everything that makes the message: subject, preheader, body, format,
text, the layout's HTML and text (its template's when the campaign has none), the sender's name,
address and reply-to, and each A/B variant.  The audience hash covers the topic, the lists (and
their topics), the segments' queries, the A/B split and a follow-up's rule.  Once a campaign is
sending its queue is made, so only the content hash matters then.  The public-archive switch
and the transport are not in it: they change nothing about what a recipient reads or who gets it.

Campaigns confirmed before the hashes existed have blank ones: they are taken as confirmed.
"""

from __future__ import annotations

from typing import Any

from tidings.lib.four_eyes import digest, enforced

from .models import ABTest
from .rendering import campaign_parts

__all__ = ["audience_fingerprint", "content_fingerprint", "enforced"]


def content_fingerprint(campaign: Any) -> str:
    """A hash of everything the campaign's messages are made of (see the module docstring)."""
    body, fmt, text_body, layout = campaign_parts(campaign)
    sender = campaign.sender if campaign.sender_id else None
    parts: dict[str, Any] = {
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "body": body,
        "format": fmt,
        "text": text_body,
        "layout": [layout.pk, layout.html, layout.text] if layout is not None else None,
        "sender": [sender.name, sender.email, sender.reply_to] if sender is not None else None,
        "reply_to": campaign.reply_to,
        "variants": [
            [v.label, v.subject, v.preheader, v.sender_name, v.body]
            for v in campaign.variants.order_by("label")
        ]
        if campaign.pk
        else [],
    }
    return digest(parts)


def audience_fingerprint(campaign: Any) -> str:
    """A hash of how the campaign's audience is chosen (not of who is in it today: people
    subscribing or leaving between confirmation and start are expected)."""
    test = ABTest.objects.filter(campaign_id=campaign.pk).values_list("share", "seed").first()
    parts = {
        "topic": campaign.topic,
        "lists": sorted(campaign.lists.values_list("pk", "topic")),
        "segments": sorted(campaign.segments.values_list("pk", "query")),
        "ab": list(test) if test else None,
        "follow_up": [
            campaign.follow_up_of_id,
            campaign.follow_up_audience,
            campaign.follow_up_days,
        ],
        "local_hour": campaign.local_hour,
    }
    return digest(parts)


def confirmed_values(campaign: Any) -> dict[str, str]:
    """The fields ``do_schedule`` stores with the confirmation."""
    return {
        "confirmed_content": content_fingerprint(campaign),
        "confirmed_audience": audience_fingerprint(campaign),
    }


def changed_since_confirmed(campaign: Any, *, audience: bool) -> bool:
    """True when the campaign's content (and, with ``audience``, how its audience is chosen) no
    longer hashes to what was confirmed.  Blank hashes (confirmed before they existed) match."""
    if campaign.confirmed_content and campaign.confirmed_content != content_fingerprint(campaign):
        return True
    return bool(
        audience
        and campaign.confirmed_audience
        and campaign.confirmed_audience != audience_fingerprint(campaign)
    )
