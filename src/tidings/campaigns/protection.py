"""Automatic protection while sending: a campaign that draws too many complaints, hard
bounces or policy refusals pauses itself (through ``lifecycle.pause_campaign``, with the reason
on its page) and its author and the owners are emailed.

=================================  =======  ==================================================
setting (``DeliveryConfig``)       default  meaning
=================================  =======  ==================================================
TIDINGS_COMPLAINT_PAUSE_RATE       0.003    pause when complaints pass 0.3% of delivered
TIDINGS_COMPLAINT_PAUSE_MIN        1000     … once at least so many were delivered
TIDINGS_BOUNCE_PAUSE_RATE          0.05     pause when hard bounces pass 5% of handed over,
                                            or policy refusals do (counted apart)
TIDINGS_BOUNCE_PAUSE_MIN           100      … once at least so many were handed over
=================================  =======  ==================================================

Complaints are people (the campaign's anonymous counters, ``EventCounter``), delivered messages
are rows marked sent.  Hard bounces are rows the receiving server refused with a permanent (5xx)
answer while sending, plus bounce reports (DSNs, ESP events) that arrived afterwards.

A policy refusal (RFC 3463 X.7.x "security or policy status": 5.7.1 refused as spam or for its
content, a blocklisted server, 5.7.23 SPF, 5.7.26 DMARC) says nothing about the address, so it is
no hard bounce: the row's error starts ``blocked:`` (``transports.base.BLOCKED`` while sending,
``bounces.processing`` for a report afterwards).  Those are counted apart, against the same limit,
and the reason then says what to check (authentication, content, blocklists), not the list.

A refusal of our envelope sender (5.1.7 bad sender's address, 5.1.8 sender's domain not found,
Exim's "Sender verify failed") is ours, not the recipient's: the row's error starts ``sender:``
(``transports.base.SENDER``, or a report afterwards).  Those are counted apart too, and the reason
says to fix the sender address and its domain (MX and SPF records of the envelope sender).  Our
SMTP server refusing to send for us at all (authentication required, relaying denied) spends no
message: the engine pauses the campaign as for an unreachable server.  The
engine
asks when it starts and then every ``CHECK_SECONDS`` for each campaign it is sending (two small
aggregate queries), and about a second after a receiving server refused a message for good (5xx),
so a small campaign full of dead addresses is not over before the next check.  An operator who
resumes a campaign it paused takes responsibility: the protection is waived for that campaign
(``Campaign.protection_waived``, set by ``do_resume``; audited).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, Sum
from django.tasks import task
from django.urls import reverse

from tidings.lib.operator_mail import Kind, mail_operators

from .config import DeliveryConfig
from .models import Campaign, Delivery, EventCounter, EventKind
from .transports.base import BLOCKED, SENDER

CHECK_SECONDS = 10.0
# How a policy refusal's ``Delivery.error`` starts, while sending and reported afterwards.
BLOCKED_ERROR = f"{BLOCKED}: "
# How a refusal of our envelope sender's ``Delivery.error`` starts.
SENDER_ERROR = f"{SENDER}: "
# How the reasons start: an operator resuming a campaign paused with it waives the protection.
PREFIX = "Paused automatically to protect your sending reputation: "


def protection_reason(campaign_id: int, config: DeliveryConfig) -> str | None:
    """Why the campaign must pause now, or None (also when an operator waived it)."""
    if Campaign.objects.filter(pk=campaign_id, protection_waived=True).exists():
        return None
    failed = Q(status=Delivery.Status.FAILED)
    policy = Q(error__startswith=BLOCKED_ERROR)
    ours = Q(error__startswith=SENDER_ERROR)
    rows = Delivery.objects.filter(campaign_id=campaign_id).aggregate(
        sent=Count("pk", filter=Q(status=Delivery.Status.SENT)),
        refused=Count("pk", filter=failed & Q(error_code__gte=500) & ~policy & ~ours),
        # While sending (with its 5xx code) or reported afterwards (no code: it was sent).
        blocked=Count("pk", filter=failed & policy),
        sender=Count("pk", filter=failed & ours),
    )
    counters = dict(
        EventCounter.objects.filter(
            campaign_id=campaign_id,
            kind__in=(EventKind.COMPLAINT, EventKind.BOUNCE_HARD),
            link=EventCounter.ALL_LINKS,
            bucket=EventCounter.ALL_TIME,
        )
        .values_list("kind")
        .annotate(people=Sum("people"))
        .order_by()
    )
    sent, refused, blocked, sender = rows["sent"], rows["refused"], rows["blocked"], rows["sender"]
    complaints = counters.get(EventKind.COMPLAINT, 0)
    if sent >= config.complaint_pause_min and complaints / sent > config.complaint_pause_rate:
        return (
            f"{PREFIX}{complaints} of {sent} recipients ({complaints / sent:.2%}) "
            f"reported it as spam, above the {config.complaint_pause_rate:.1%} limit"
        )
    hard = refused + counters.get(EventKind.BOUNCE_HARD, 0)
    handed = sent + refused + blocked + sender
    if handed < config.bounce_pause_min:
        return None
    if sender / handed > config.bounce_pause_rate:
        return (
            f"{PREFIX}{sender} of {handed} messages ({sender / handed:.1%}) were refused "
            "because of our envelope sender address (where bounces go), not the recipients', "
            f"above the {config.bounce_pause_rate:.0%} limit: nobody was suppressed. Fix the "
            "sender address or its domain: the domain must exist, with MX records so servers "
            "can check the address, and an SPF record that lists the sending server; then "
            "resume, and retry the failed messages"
        )
    if hard / handed > config.bounce_pause_rate:
        return (
            f"{PREFIX}{hard} of {handed} messages ({hard / handed:.1%}) bounced "
            f"hard, above the {config.bounce_pause_rate:.0%} limit: check the list's source"
        )
    if blocked / handed > config.bounce_pause_rate:
        return (
            f"{PREFIX}{blocked} of {handed} messages ({blocked / handed:.1%}) were refused "
            "by the receiving servers' policy (content, authentication or reputation: not the "
            f"addresses), above the {config.bounce_pause_rate:.0%} limit: check that DKIM and "
            "SPF pass and align with the From domain (DMARC), the content, and whether the "
            "sending server or links are on a blocklist"
        )
    return None


def recipients_for(campaign: Campaign) -> list[Any]:
    """The campaign's author and the owners (operators, never contacts)."""
    from django.contrib.auth import get_user_model

    users = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name="owner") | Q(pk=campaign.created_by_id or 0))
        .distinct()
    )
    return list(users)


@task()
def notify_paused_task(campaign_id: int, reason: str) -> int:
    """Email the campaign's author and the owners that it paused itself, and why."""
    from tidings.audience.tokens import absolute_url

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    link = absolute_url(reverse("campaigns:detail", args=[campaign.pk]))
    return mail_operators(
        recipients_for(campaign),
        f"tidings: the campaign “{campaign.name}” paused itself",
        f"{reason}.\n\nNothing more is sent until someone resumes it. Mailbox providers "
        "block senders whose complaint, bounce or refusal rates stay this high; look into "
        f"what the reason above says before resuming:\n{link}\n",
        about=f"campaign {campaign_id} pausing itself",
        kind=Kind.SAFETY,  # never switched off: see lib.operator_mail
    )
