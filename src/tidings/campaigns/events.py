"""Recording what happened to delivered messages: events plus the counters reports read.

Two ways in, one writer:

- ``record_delivery_event()`` — synchronous, in the caller's transaction (bounces, complaints,
  unsubscribes: rare, and the caller is changing other rows in the same transaction);
- the ``"tracking"`` ingest sink (``tidings.lib.ingest``) — opens and clicks from the tracking
  endpoints, buffered and written here in batches by ``record_events()``.

Every batch writes its ``Event`` rows with one ``bulk_create`` and adds to the anonymous
``EventCounter`` rows with one ``INSERT … ON CONFLICT DO UPDATE SET total = total + …`` (an atomic
increment like ``F("total") + n``, but one statement for the whole batch and no lost race when two
writers create the same counter), so the report never counts events.

Unique counts ("people"): a delivery is one person.  A batch looks up, with one indexed query,
which of its deliveries already have an event of that kind (and, for clicks, of that link), and
counts a person only the first time.  Writers take one lock (a PostgreSQL advisory transaction
lock; SQLite's IMMEDIATE transactions already serialise writers) so two flushing processes never
both count the same person as new.  A person whose events were erased or swept by retention would
count again if they clicked again: rare, and the counter then means "people with events kept".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from tidings import signals
from tidings.audience.consent import tracked_contact_ids

from .engagement import lock_event_writers, note_events
from .models import Delivery, Event, EventCounter, EventKind

log = logging.getLogger(__name__)

KINDS = frozenset(EventKind.values)
_LOOKUP_CHUNK = 900  # ids per IN (…) query: under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class NewEvent:
    delivery_id: int
    kind: str
    at: datetime
    link: int | None = None
    machine: bool = False


def record_delivery_event(
    delivery_id: int,
    kind: str,
    *,
    at: datetime | None = None,
    link: int | None = None,
    machine: bool = False,
) -> None:
    """Record one event for a delivery, with its counters, in the caller's transaction.

    Raises ``ValueError`` for an unknown kind and ``Delivery.DoesNotExist`` when there is no
    such delivery.
    """
    event = NewEvent(delivery_id, kind, at or timezone.now(), link, machine)
    if record_events([event]) == 0:
        raise Delivery.DoesNotExist(f"no delivery #{delivery_id}")


def record_events(events: Sequence[NewEvent], *, classify: bool = False) -> int:
    """Write ``events`` and add them to the counters; return how many were written.

    Events for deliveries that no longer exist (a campaign deleted since) are skipped.
    ``classify``: also apply the batch rules of ``tracking.classify_batch`` (scanner timing,
    every-link bursts) to opens and clicks before writing.
    """
    for event in events:
        if event.kind not in KINDS:
            raise ValueError(f"unknown event kind {event.kind!r}")
    if not events:
        return 0
    with transaction.atomic():
        lock_event_writers()
        deliveries = _deliveries({e.delivery_id for e in events})
        events = [e for e in events if e.delivery_id in deliveries]
        events = _without_refused_tracking(events, deliveries)
        if not events:
            return 0
        if classify:
            from .tracking import classify_batch

            events = classify_batch(events, {d: sent for d, (_, sent, _) in deliveries.items()})
        seen = _already_seen(events)
        clicked: list[tuple[int, int, int]] = []  # first clicks of a link by a person
        rows: list[Event] = []
        deltas: dict[tuple[int, str, bool, int, int], list[int]] = defaultdict(lambda: [0, 0])
        for e in events:
            campaign_id = deliveries[e.delivery_id][0]
            rows.append(
                Event(
                    delivery_id=e.delivery_id,
                    campaign_id=campaign_id,
                    kind=e.kind,
                    at=e.at,
                    link=e.link,
                    machine=e.machine,
                )
            )
            first = (e.delivery_id, e.kind, e.machine, None) not in seen
            seen.add((e.delivery_id, e.kind, e.machine, None))
            counter = deltas[(campaign_id, e.kind, e.machine, EventCounter.ALL_LINKS, 0)]
            counter[0] += 1
            counter[1] += first
            if e.kind == EventKind.CLICK and e.link is not None:
                first_here = (e.delivery_id, e.kind, e.machine, e.link) not in seen
                seen.add((e.delivery_id, e.kind, e.machine, e.link))
                counter = deltas[(campaign_id, e.kind, e.machine, e.link, 0)]
                counter[0] += 1
                counter[1] += first_here
                if first_here and not e.machine:
                    clicked.append((e.delivery_id, campaign_id, e.link))
            hour = int(e.at.timestamp() // 3600)
            deltas[(campaign_id, e.kind, e.machine, EventCounter.ALL_LINKS, hour)][0] += 1
        Event.objects.bulk_create(rows, batch_size=1000)
        _add_to_counters(deltas)
        note_events((deliveries[e.delivery_id][2], e.kind, e.at, e.machine) for e in events)
        if clicked:  # journeys started by a click (one signal a batch)
            transaction.on_commit(
                lambda: signals.campaign_links_clicked.send(sender=Event, clicks=clicked)
            )
    return len(rows)


def _chunks(values: Iterable[int]) -> Iterable[list[int]]:
    it = iter(values)
    while chunk := list(islice(it, _LOOKUP_CHUNK)):
        yield chunk


def _deliveries(ids: set[int]) -> dict[int, tuple[int, datetime | None, int | None]]:
    """{delivery id: (campaign id, sent_at, contact id)} for those of ``ids`` that exist."""
    found: dict[int, tuple[int, datetime | None, int | None]] = {}
    for chunk in _chunks(sorted(ids)):
        for pk, campaign_id, sent_at, contact_id in Delivery.objects.filter(
            pk__in=chunk
        ).values_list("pk", "campaign_id", "sent_at", "contact_id"):
            found[pk] = (campaign_id, sent_at, contact_id)
    return found


def _without_refused_tracking(
    events: list[NewEvent], deliveries: dict[int, tuple[int, datetime | None, int | None]]
) -> list[NewEvent]:
    """Drop the opens and clicks of people who do not allow tracking *now*.

    Rendering leaves the pixel and tracked links out for them, but a message sent before they
    refused still carries both: opening it later must not record anything about them.  (Whose
    contact was erased since has no one left to ask: their events stay anonymous.)"""
    tracked_kinds = (EventKind.OPEN, EventKind.CLICK)
    contacts = {deliveries[e.delivery_id][2] for e in events if e.kind in tracked_kinds} - {None}
    if not contacts:
        return events
    allowed = tracked_contact_ids(c for c in contacts if c is not None)
    return [
        e
        for e in events
        if e.kind not in tracked_kinds
        or deliveries[e.delivery_id][2] is None
        or deliveries[e.delivery_id][2] in allowed
    ]


def _already_seen(events: Sequence[NewEvent]) -> set[tuple[int, str, bool, int | None]]:
    """(delivery, kind, machine, None) and, for clicks, (…, link) of the events already kept."""
    kinds = {e.kind for e in events}
    seen: set[tuple[int, str, bool, int | None]] = set()
    for chunk in _chunks(sorted({e.delivery_id for e in events})):
        for delivery_id, kind, machine, link in (
            Event.objects.filter(delivery_id__in=chunk, kind__in=kinds)
            .values_list("delivery_id", "kind", "machine", "link")
            .distinct()
        ):
            seen.add((delivery_id, kind, machine, None))
            if link is not None:
                seen.add((delivery_id, kind, machine, link))
    return seen


def _add_to_counters(deltas: dict[tuple[int, str, bool, int, int], list[int]]) -> None:
    """Add ``deltas`` to the counter rows, creating those missing, in one statement per 500."""
    table = connection.ops.quote_name(EventCounter._meta.db_table)
    # The table name comes from the model and every value is a parameter.
    sql = (
        f"INSERT INTO {table} (campaign_id, kind, machine, link, bucket, total, people) "  # noqa: S608
        "VALUES {values} ON CONFLICT (campaign_id, kind, machine, link, bucket) "
        f"DO UPDATE SET total = {table}.total + excluded.total, "
        f"people = {table}.people + excluded.people"
    )
    items = sorted(deltas.items())  # a stable order: concurrent writers never deadlock
    for start in range(0, len(items), 500):
        part = items[start : start + 500]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(part))
        params: list[Any] = []
        for (campaign_id, kind, machine, link, bucket), (total, people) in part:
            params += [campaign_id, kind, machine, link, bucket, total, people]
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("{values}", values), params)


def write_tracking_rows(rows: list[dict]) -> None:
    """The ``"tracking"`` ingest sink: rows from ``tracking.submit_open/submit_click``.

    A row is ``{"d": delivery id, "k": "open"|"click", "l": link index or None,
    "m": machine (bool), "t": POSIX time}``.  Malformed rows are dropped and counted in the log
    (no row content: it would name a delivery).
    """
    events: list[NewEvent] = []
    bad = 0
    for row in rows:
        try:
            kind = row["k"]
            if kind not in (EventKind.OPEN, EventKind.CLICK):
                raise ValueError
            link = row.get("l")
            events.append(
                NewEvent(
                    delivery_id=int(row["d"]),
                    kind=kind,
                    at=datetime.fromtimestamp(float(row["t"]), tz=UTC),
                    link=None if link is None else int(link),
                    machine=bool(row.get("m")),
                )
            )
        except (KeyError, TypeError, ValueError):
            bad += 1
    if bad:
        log.warning("tracking ingest: dropped %d malformed rows", bad)
    record_events(events, classify=True)


def count_unsubscribe(sender: Any, *, contact_id: int, source_ref: str, **kwargs: Any) -> None:
    """Receiver of ``signals.unsubscribe_recorded`` (sent inside the unsubscribe's transaction)."""
    record_unsubscribe_from(source_ref, contact_id)


def record_unsubscribe_from(source_ref: str, contact_id: int) -> None:
    """Count an unsubscribe against the campaign whose link it came from.

    ``source_ref`` is the consent event's reference, ``"delivery:<id>"`` for an unsubscribe link
    or List-Unsubscribe header of a campaign message (anything else: nothing to count).  One
    unsubscribe event per delivery at most, and only for that delivery's own contact.
    """
    prefix, _, raw_id = source_ref.partition(":")
    if prefix != "delivery" or not raw_id.isdigit():
        return
    delivery_id = int(raw_id)
    if not Delivery.objects.filter(pk=delivery_id, contact_id=contact_id).exists():
        return
    if Event.objects.filter(delivery_id=delivery_id, kind=EventKind.UNSUBSCRIBE).exists():
        return
    record_delivery_event(delivery_id, EventKind.UNSUBSCRIBE)
