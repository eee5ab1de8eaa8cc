"""Telling operators that a campaign they counted on will not go out as planned.

Two things send a campaign back without anyone pressing a button on it (and the first also
takes from a paused campaign the confirmation it would resume on):

- with four-eyes sending, a change to what a confirmed campaign reads (its layout, template,
  segments, lists: ``reconfirm``) sends a scheduled campaign back to draft and pauses a sending
  one, until another operator confirms it again;
- the worker finds a scheduled campaign it cannot start when it is due (a segment stopped
  working, its lists were closed, what it sends changed around the actions that void) and puts
  it back to draft (``lifecycle.start_due_campaigns``).

Its page says why; ``notify_sent_back_task`` also emails its author and whoever confirmed it
(the operator who scheduled it: audit ``campaign.scheduled``), in words: what changed, and that
it needs scheduling — or another operator's confirmation — again.  Through
``lib.operator_mail`` (kind ``SENT_BACK``, which each operator may switch off on their CRM
settings page): the campaign's name and a link, never a person's data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.tasks import task
from django.urls import reverse
from django.utils import timezone

from tidings.lib.models import AuditEntry
from tidings.lib.operator_mail import Kind, mail_operators

from .models import Campaign

Status = Campaign.Status


def tell_on_commit(
    campaign: Campaign,
    why: str,
    *,
    was: str,
    scheduled_at: datetime | None,
    confirm: bool,
    changed_by: Any = None,
) -> None:
    """Once the change commits, email the campaign's author and whoever confirmed it that it
    went back (``was``: the state it left, scheduled or sending; ``why``: the reason on its
    page; ``confirm``: it needs another operator's confirmation, not only scheduling)."""
    if was not in (Status.SCHEDULED, Status.SENDING) and not (was == Status.PAUSED and confirm):
        # Paused by hand, nothing it was about to do stopped; but paused and voided, it can no
        # longer be resumed as it was, and whoever counts on resuming it must learn that.
        return
    when = scheduled_at.isoformat() if scheduled_at else ""
    args = (campaign.pk, why, was, when, confirm, getattr(changed_by, "pk", None))
    transaction.on_commit(lambda: notify_sent_back_task.enqueue(*args))


def recipients(campaign: Campaign) -> list[Any]:
    """Its author and the operator who last confirmed (scheduled) it, if still operators."""
    scheduled = (
        AuditEntry.objects.filter(
            action="campaign.scheduled",
            object_type=campaign._meta.label_lower,
            object_id=str(campaign.pk),
        )
        .order_by("-at", "-pk")
        .values_list("actor_id", flat=True)
        .first()
    )
    ids = {pk for pk in (campaign.created_by_id, scheduled) if pk}
    users = get_user_model().objects.filter(pk__in=ids, is_active=True, is_staff=True)
    return list(users.order_by("pk"))


@task()
def notify_sent_back_task(
    campaign_id: int, why: str, was: str, scheduled_at: str, confirm: bool, changed_by: int | None
) -> int:
    """Email what ``tell_on_commit`` describes; returns how many were emailed (0 when the
    campaign is gone, or was scheduled or resumed again meanwhile)."""
    from tidings.audience.tokens import absolute_url

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None or campaign.status not in (Status.DRAFT, Status.PAUSED):
        return 0
    who = get_user_model().objects.filter(pk=changed_by).first() if changed_by else None
    link = absolute_url(reverse("campaigns:detail", args=[campaign.pk]))
    name = f"“{campaign.name}”"
    if was == Status.PAUSED:
        subject = f"tidings: the paused campaign {name} needs confirming again"
        what = (
            f"The campaign {name} is paused, and it can no longer be resumed as it was: "
            "what it sends changed after it was confirmed."
        )
    elif was == Status.SENDING:
        subject = f"tidings: the campaign {name} paused while sending"
        what = f"The campaign {name} paused while sending: nothing more goes out until it resumes."
    else:
        subject = f"tidings: the campaign {name} is back to draft"
        when = ""
        if scheduled_at:
            local = timezone.localtime(datetime.fromisoformat(scheduled_at))
            when = f" (it was scheduled for {local:%Y-%m-%d %H:%M %Z})"
        what = f"The campaign {name} is back to draft and will not go out{when}."
    by = f" The change was made by {who.get_username()}." if who is not None else ""
    if confirm:
        then = (
            "It needs confirming again: another operator with the send permission — not "
            "whoever made the change — reads it on its page and "
            + ("schedules it again." if was == Status.SCHEDULED else "resumes it.")
        )
    else:
        then = "Put it right on its page, then schedule it again."
    return mail_operators(
        recipients(campaign),
        subject,
        f"{what}\n\nWhy: {why}.{by}\n\n{then}\n{link}\n",
        about=f"campaign {campaign_id} going back",
        kind=Kind.SENT_BACK,
    )
