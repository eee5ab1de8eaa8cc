"""Asking another operator to send a campaign: its author may not send it themselves.

With four-eyes sending (``TIDINGS_SEND_NEEDS_SECOND_OPERATOR``) whoever wrote or last edited a
campaign cannot schedule it, nor resume it once a change voided its confirmation
(``lifecycle``); and a writer (no send permission) never sends.  ``do_request_confirmation`` lets
them ask: the operators who may send it (the send permission; with four-eyes neither its author
nor its last editor; never the one asking) are emailed a link to its page, as operators are told
of a campaign that paused itself, and the page shows who asked and when (audit
``campaign.confirmation_requested``; no new state on the campaign).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.tasks import task
from django.urls import reverse

from tidings.audience.tokens import absolute_url
from tidings.lib.access import has_permission, operators_with_permission
from tidings.lib.audit import audit
from tidings.lib.four_eyes import enforced, needs_second_operator
from tidings.lib.models import AuditEntry
from tidings.lib.operator_mail import Kind, mail_operators

from .fingerprint import changed_since_confirmed
from .lifecycle import CampaignNotReady, Problem
from .models import Campaign

REQUESTED = "campaign.confirmation_requested"
_ASKABLE = (Campaign.Status.DRAFT, Campaign.Status.PAUSED)


def _why_not(campaign: Campaign, actor: Any) -> str:
    """Why ``actor`` may not send the campaign themselves ("" when they may)."""
    if not has_permission(actor, "send"):
        return "their role does not send campaigns"
    if not needs_second_operator(actor, (campaign.created_by_id, campaign.last_edited_by_id)):
        return ""
    if campaign.status == Campaign.Status.PAUSED:  # its author resumes it unless it changed
        fresh = Campaign.objects.select_related("sender", "layout", "template__layout")
        if not changed_since_confirmed(fresh.get(pk=campaign.pk), audience=False):
            return ""
    return "sending needs a second operator here, and they wrote or last changed it"


def may_ask(campaign: Campaign, actor: Any) -> bool:
    """Whether ``actor`` is an operator who may not send it themselves, so asks someone else."""
    return (
        campaign.status in _ASKABLE
        and getattr(actor, "pk", None) is not None
        and bool(_why_not(campaign, actor))
    )


def last_request(campaign: Campaign) -> AuditEntry | None:
    """The latest request to confirm the campaign, since it was last changed."""
    entries = AuditEntry.objects.filter(
        action=REQUESTED, object_type=campaign._meta.label_lower, object_id=str(campaign.pk)
    ).select_related("actor")
    return entries.filter(at__gte=campaign.updated_at).order_by("-at", "-pk").first()


@transaction.atomic
def do_request_confirmation(campaign: Campaign, *, actor: Any) -> AuditEntry:
    """An operator who may not send the campaign asks others to send (or resume) it.  Raises
    CampaignNotReady when they may send it themselves, or it is neither a draft nor paused."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not _why_not(campaign, actor):
        raise CampaignNotReady([Problem("you may send it yourself")])
    if campaign.status not in _ASKABLE:
        raise CampaignNotReady(
            [Problem(f"a {campaign.status} campaign does not wait for a second operator")]
        )
    entry = audit(REQUESTED, actor=actor, obj=campaign)
    pk, asker = campaign.pk, getattr(actor, "pk", None)
    transaction.on_commit(lambda: notify_confirmers_task.enqueue(pk, asker))
    return entry


def confirmers(campaign: Campaign, *, asker_id: int | None = None) -> list[Any]:
    """The operators who may send it: the send permission, never the one
    asking, and with four-eyes sending neither its author nor its last editor."""
    authors = [campaign.created_by_id, campaign.last_edited_by_id] if enforced() else []
    authors.append(asker_id)
    users = (
        get_user_model()
        .objects.filter(operators_with_permission("send"))
        .exclude(pk__in=[pk for pk in authors if pk])
        .distinct()
    )
    return list(users)


@task()
def notify_confirmers_task(campaign_id: int, asker_id: int | None) -> int:
    """Email the operators who may send the campaign that someone asked them to (its name and a
    link to its page; nobody's personal data).  Returns how many were emailed."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in _ASKABLE:
        return 0
    recipients = confirmers(campaign, asker_id=asker_id)
    if not recipients:
        return 0
    asker = get_user_model().objects.filter(pk=asker_id).first() if asker_id else None
    who = asker.get_username() if asker is not None else "An operator"
    why = _why_not(campaign, asker) if asker is not None else ""
    verb = "send" if campaign.status == Campaign.Status.DRAFT else "resume"
    link = absolute_url(reverse("campaigns:detail", args=[campaign.pk]))
    return mail_operators(
        recipients,
        f"tidings: please {verb} the campaign “{campaign.name}”",
        f"{who} asks another operator to {verb} the campaign “{campaign.name}”"
        + (f" ({why})" if why else "")
        + f". Read it, then {verb} it from its page if it is right:\n{link}\n",
        about=f"the confirmation of campaign {campaign_id}",
        kind=Kind.CONFIRMATION,
    )


def waiting(actor: Any | None = None, *, limit: int = 50) -> list[Campaign]:
    """The drafts and paused campaigns someone asked another operator to send or resume (a
    request since the campaign last changed), newest request first.  With ``actor``: only those
    they may send themselves (never their own request).  [] with four-eyes off."""
    if not enforced():
        return []
    if actor is not None and not has_permission(actor, "send"):
        return []
    requests = AuditEntry.objects.filter(
        action=REQUESTED, object_type=Campaign._meta.label_lower
    ).order_by("-at", "-pk")
    asked: dict[int, tuple[Any, int | None]] = {}
    for object_id, at, asker in requests.values_list("object_id", "at", "actor_id")[:1000]:
        if object_id.isdigit():
            asked.setdefault(int(object_id), (at, asker))
    campaigns = Campaign.objects.filter(pk__in=asked, status__in=_ASKABLE)
    found = []
    for campaign in sorted(campaigns, key=lambda c: asked[c.pk][0], reverse=True):
        at, asker = asked[campaign.pk]
        if at < campaign.updated_at:
            continue  # changed since: whoever changed it asks again
        if actor is not None and (asker == actor.pk or _why_not(campaign, actor)):
            continue
        found.append(campaign)
        if len(found) >= limit:
            break
    return found
