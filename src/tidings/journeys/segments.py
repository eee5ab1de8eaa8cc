"""The trigger "a contact starts matching a saved segment" (``segment_matched``), checked
incrementally.

Each active journey with this trigger keeps the set of people its segment matched at the last
check (``SegmentMember``) and a watermark (``SegmentWatch``).  A check (``check_segments``, every
minute from the worker's scheduler) does one of two things per journey, both set-based in SQL:

- **incremental**: only the people changed since the watermark (their contact row — details,
  attributes — or one of their subscriptions, found by the ``updated_at`` indexes) are evaluated
  against the segment (more than ``MAX_CHANGED`` of them, an import say: a full diff instead).
  Those who match and are not members become members and are enrolled; members among them who
  no longer match stop being members (so they may start matching again later).  The watermark
  is taken a little before the check started (``OVERLAP``), so a change committed while a check
  ran is seen by the next one; seeing a change twice is harmless (a member is never enrolled
  again for the same match).
- **full diff**, every ``FULL_EVERY`` and whenever the segment's query changed: the segment is
  evaluated for everyone and compared with the stored set.  It catches what no row change shows:
  conditions on time (``created < 30d ago``), engagement (``opened_in(30d)``: opens and clicks
  are not watched incrementally, their tables are too large to scan each minute), and writes
  that bypass ``updated_at`` (bulk updates).

The first check of a journey (just activated, or its segment replaced) takes the people who
already match as the starting set without enrolling them: they did not *start* matching.  Whether
someone who starts matching is enrolled is then the journey's entry rule (``do_enrol``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.tasks import task
from django.utils import timezone

from tidings.audience.models import Contact, Segment, Subscription
from tidings.audience.segments import compile_segment

from .actions import NotEnrolled, do_enrol
from .models import Journey, SegmentMember, SegmentWatch

logger = logging.getLogger("tidings.journeys.segments")

FULL_EVERY = timedelta(hours=1)
OVERLAP = timedelta(minutes=2)
CHUNK = 1000
MAX_CHANGED = 10_000  # more people changed than this since the last check: a full diff instead


def changed_since(since: datetime) -> set[int]:
    """The contacts whose row or one of whose subscriptions changed after ``since`` (two range
    scans of the ``updated_at`` indexes; an OR of the two in one query would read every contact)."""
    contacts = Contact.objects.filter(updated_at__gt=since).values_list("pk", flat=True)
    subscribers = Subscription.objects.filter(updated_at__gt=since).values_list(
        "contact_id", flat=True
    )
    return set(contacts) | set(subscribers)


def _is_member(journey: Journey) -> Exists:
    return Exists(SegmentMember.objects.filter(journey=journey, contact=OuterRef("pk")))


def check_journey(journey: Journey, now: datetime | None = None, *, full: bool = False) -> int:
    """Check one journey's segment; returns how many people were enrolled."""
    now = now or timezone.now()
    watch, _ = SegmentWatch.objects.get_or_create(journey=journey)
    segment = Segment.objects.filter(pk=journey.trigger_params.get("segment")).first()
    if segment is None:
        logger.warning("journey %s: its segment no longer exists", journey.pk)
        return 0
    try:
        condition = compile_segment(segment.query, now=now)
    except Exception as exc:  # the message may quote the query: only the type is logged
        logger.warning(
            "journey %s: its segment does not compile (%s)", journey.pk, type(exc).__name__
        )
        return 0
    baseline = watch.full_at is None or watch.segment_id != segment.pk
    full = (
        full
        or baseline
        or watch.query != segment.query
        or watch.checked_at is None
        or now - watch.full_at >= FULL_EVERY  # type: ignore[operator]
    )
    changed: set[int] = set()
    if not full:
        assert watch.checked_at is not None  # else full
        changed = changed_since(watch.checked_at - OVERLAP)
        full = len(changed) > MAX_CHANGED  # a bulk change: one pass over everyone is cheaper
    matching = Contact.objects.filter(condition)
    members = SegmentMember.objects.filter(journey=journey)
    if baseline:
        members.delete()
    if full:
        scope = Contact.objects.all()
        gone = members.exclude(Exists(matching.filter(pk=OuterRef("contact_id"))))
    else:
        scope = Contact.objects.filter(pk__in=changed)
        gone = members.filter(contact_id__in=changed).exclude(
            Exists(matching.filter(pk=OuterRef("contact_id")))
        )
    gone.delete()
    new = (
        scope.filter(condition)
        .exclude(_is_member(journey))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    enrolled = 0
    ids = list(new)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic():
            SegmentMember.objects.bulk_create(
                [SegmentMember(journey=journey, contact_id=pk, since=now) for pk in chunk],
                ignore_conflicts=True,
            )
        if not baseline:
            for contact in Contact.objects.filter(pk__in=chunk).order_by("pk"):
                try:
                    do_enrol(journey, contact, source="segment")
                except NotEnrolled:
                    continue
                enrolled += 1
    fields: dict[str, Any] = {"checked_at": now}
    if full:
        fields.update(full_at=now, query=segment.query, segment=segment)
    SegmentWatch.objects.filter(pk=watch.pk).update(**fields)
    return enrolled


def check_segments(now: datetime | None = None, *, full: bool = False) -> int:
    """Check every active ``segment_matched`` journey; one journey's failure never stops the
    others.  Returns how many people were enrolled."""
    total = 0
    journeys = Journey.objects.filter(
        status=Journey.Status.ACTIVE, trigger=Journey.Trigger.SEGMENT
    ).order_by("pk")
    for journey in journeys:
        try:
            total += check_journey(journey, now, full=full)
        except Exception:
            logger.exception("journey %s: segment check failed", journey.pk)
    return total


@task()
def check_segments_task() -> int:
    return check_segments()
