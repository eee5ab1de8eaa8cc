"""Follow-ups: "resend to the people who did not open (or click)" after N days, with a new
subject, as a new campaign linked to the original (``Campaign.follow_up_of``).

The follow-up is a draft like any other: it is checked, previewed, confirmed and scheduled the
same way (its time is filled in: the original's start plus N days).  When it starts, its audience
is the original's recipients without a human open (or click) — machine opens by privacy proxies
do not count as opening — and, as for every campaign, only people who may still be emailed about
its topic: anyone who unsubscribed or was suppressed since is left out.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from tidings.lib.audit import audit

from .lifecycle import CampaignNotReady, Problem
from .models import ABTest, Campaign

AUDIENCES = ("not_opened", "not_clicked")


@transaction.atomic
def do_create_follow_up(
    original: Campaign, *, audience: str, days: int, subject: str, actor: Any
) -> Campaign:
    problems = []
    if original.started_at is None:
        problems.append(Problem("the original has not been sent yet", None))
    if audience not in AUDIENCES:
        problems.append(Problem(f"choose who it is for: {', '.join(AUDIENCES)}", "audience"))
    if not 1 <= days <= 60:
        problems.append(Problem("send it 1 to 60 days after the original", "days"))
    if not subject.strip():
        problems.append(Problem("write a new subject", "subject"))
    if problems:
        raise CampaignNotReady(problems)
    who = "did not open" if audience == "not_opened" else "did not click"
    # An A/B test's follow-up repeats what won (most of the people it goes to got the winner),
    # not the campaign's own body that the variants replaced.
    test = ABTest.objects.filter(campaign=original).select_related("winner").first()
    winner = test.winner if test is not None else None
    body = winner.body if winner is not None and winner.body else original.body
    preheader = winner.preheader if winner is not None and winner.preheader else original.preheader
    name = f"{original.name}: to people who {who}"
    follow_up = Campaign.objects.create(
        name=name[: Campaign._meta.get_field("name").max_length],
        subject=subject.strip(),
        preheader=preheader,
        sender=original.sender,
        reply_to=original.reply_to,
        template=original.template,
        layout=original.layout,
        format=original.format,
        body=body,
        text_body=original.text_body,
        topic=original.topic,
        local_hour=original.local_hour,
        follow_up_of=original,
        follow_up_audience=audience,
        follow_up_days=days,
        created_by=actor if getattr(actor, "pk", None) else None,
        last_edited_by=actor if getattr(actor, "pk", None) else None,
    )
    follow_up.lists.set(original.lists.all())
    follow_up.segments.set(original.segments.all())
    audit(
        "campaign.follow_up_created",
        actor=actor,
        obj=follow_up,
        original=original.pk,
        audience=audience,
        days=days,
    )
    return follow_up


def suggested_time(campaign: Campaign) -> datetime | None:
    """When a follow-up should go: the original's start plus its days."""
    original = campaign.follow_up_of
    if original is None or original.started_at is None or not campaign.follow_up_days:
        return None
    return original.started_at + timedelta(days=campaign.follow_up_days)
