"""The data behind the segment language's ``opened_in(90d)``, ``clicked_in(30d)`` and
``received_in(30d)`` (``audience.segments.engagement``).

- ``opened_in``: a person opened one of our campaign messages since then, or clicked in one (a
  click proves the open even when images were blocked);
- ``clicked_in``: a person clicked a link in one of our campaign messages since then;
- ``received_in``: we sent a person a campaign message since then.

Opens and clicks by machines (privacy proxies, link scanners: ``tracking.is_machine_request``,
``Event.machine``) are not engagement: Apple's proxy opens every message it is sent.  Journey
mail (``JourneyMailEvent``) and one-off messages are not counted either.

Each predicate is defined by an ``EXISTS`` over the person's deliveries and events
(``opened_since_exists`` and friends, kept as the definition and for the tests that compare the
two forms), but answered from three facts kept on the contact: ``last_opened_at``,
``last_clicked_at`` and ``last_received_at``, the latest of those events and sendings that are
still kept.  "Opened at least once since X" is exactly "the latest open is at or after X", so
``opened_in(90d)`` is ``last_opened_at >= now - 90 days``: an index look-up, where the ``EXISTS``
was a semi-join over millions of events (2.8 s at 1M contacts and 10M events).

Who keeps the facts:

- ``note_events`` — every write of events (``events.record_events``: the tracking ingest, buffered
  or not, and the synchronous bounces and unsubscribes), in the same transaction;
- ``note_received`` — the queue, when it marks deliveries sent (``queue.results``: its UPDATE
  returns the people whose rows it changed);
- ``refresh`` — whoever removes events or deliveries recomputes the facts of the people
  concerned: the retention sweep of email events (``rights.retention``).  Erasure clears them
  with the rest of the contact (``audience.personal_data``);
- ``rebuild`` — recomputes them for everybody from the kept events and deliveries (the migration
  that introduced them, and ``tidings engagement rebuild`` after data was changed by hand).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import islice

from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from tidings.audience.models import Contact

from .models import Delivery, Event, EventKind

OPENED = "last_opened_at"
CLICKED = "last_clicked_at"
RECEIVED = "last_received_at"
FACTS = (OPENED, CLICKED, RECEIVED)
# The events each fact is the latest of (human ones only).
_KINDS = {OPENED: (EventKind.OPEN, EventKind.CLICK), CLICKED: (EventKind.CLICK,)}
_CHUNK = 900  # contact ids per statement: under SQLite's variable limit


# --- the predicates -----------------------------------------------------------------------------
def opened_since(since: datetime) -> Q:
    return Q(last_opened_at__gte=since)


def clicked_since(since: datetime) -> Q:
    return Q(last_clicked_at__gte=since)


def received_since(since: datetime) -> Q:
    return Q(last_received_at__gte=since)


def _events_of(kinds: Sequence[str]) -> QuerySet[Event]:
    return Event.objects.filter(kind__in=kinds, machine=False)


def _sent() -> QuerySet[Delivery]:
    return Delivery.objects.filter(status=Delivery.Status.SENT)


def opened_since_exists(since: datetime) -> Q:
    """The definition of ``opened_in``, as an ``EXISTS`` over the events (slow at scale)."""
    events = _events_of(_KINDS[OPENED]).filter(delivery__contact=OuterRef("pk"), at__gte=since)
    return Q(Exists(events))


def clicked_since_exists(since: datetime) -> Q:
    events = _events_of(_KINDS[CLICKED]).filter(delivery__contact=OuterRef("pk"), at__gte=since)
    return Q(Exists(events))


def received_since_exists(since: datetime) -> Q:
    return Q(Exists(_sent().filter(contact=OuterRef("pk"), sent_at__gte=since)))


EXISTS_FORMS = {
    "opened_in": opened_since_exists,
    "clicked_in": clicked_since_exists,
    "received_in": received_since_exists,
}
FACT_FORMS = {
    "opened_in": opened_since,
    "clicked_in": clicked_since,
    "received_in": received_since,
}


def register_engagement() -> None:
    from tidings.audience.segments import engagement

    for name, provider in FACT_FORMS.items():
        engagement.register(name, provider)


# --- keeping the facts --------------------------------------------------------------------------
def _chunks(values: Iterable[int]) -> Iterable[list[int]]:
    it = iter(sorted(set(values)))
    while chunk := list(islice(it, _CHUNK)):
        yield chunk


def _raise(fact: str, latest: dict[int, datetime]) -> None:
    """Move ``fact`` forward to ``latest[contact]`` where it is earlier (or unset), never back.

    Rows that already hold a later time are left untouched (no new row version, no lock), and
    rows are locked in id order, so two writers never wait for each other in opposite orders.
    PostgreSQL: one statement for the batch, the pairs as two arrays."""
    pairs = sorted(latest.items())
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(Contact._meta.db_table)
        column = connection.ops.quote_name(fact)
        # FOR UPDATE under ORDER BY locks the rows in id order (a plain UPDATE locks them in
        # whatever order its join reads them).
        sql = f"""
            WITH v AS (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS at),
            locked AS (
                SELECT c.id, v.at FROM {table} c JOIN v ON v.id = c.id
                WHERE c.{column} IS NULL OR c.{column} < v.at
                ORDER BY c.id FOR UPDATE OF c
            )
            UPDATE {table} c SET {column} = locked.at FROM locked
            WHERE c.id = locked.id AND (c.{column} IS NULL OR c.{column} < locked.at)
        """  # noqa: S608 - names from the model, values are parameters
        with connection.cursor() as cursor:
            cursor.execute(sql, [[pk for pk, _ in pairs], [at for _, at in pairs]])
        return
    # Elsewhere (SQLite): one statement per 400 pairs, the pairs as a VALUES table; datetimes
    # as the backend stores them, so the comparison is the column's own.
    table = connection.ops.quote_name(Contact._meta.db_table)
    column = connection.ops.quote_name(fact)
    adapt = connection.ops.adapt_datetimefield_value
    for start in range(0, len(pairs), 400):
        part = pairs[start : start + 400]
        values = ", ".join(["(%s, %s)"] * len(part))
        sql = f"""
            WITH v(id, at) AS (VALUES {values})
            UPDATE {table} SET {column} = (SELECT v.at FROM v WHERE v.id = {table}.id)
            WHERE id IN (
                SELECT v.id FROM v WHERE {table}.{column} IS NULL OR {table}.{column} < v.at
            )
        """  # noqa: S608 - names from the model, values are parameters
        params = [value for pk, at in part for value in (pk, adapt(at))]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def note_events(events: Iterable[tuple[int | None, str, datetime, bool]]) -> None:
    """Keep the facts for events just written: ``(contact id, kind, at, machine)`` each."""
    latest: dict[str, dict[int, datetime]] = {OPENED: {}, CLICKED: {}}
    for contact_id, kind, at, machine in events:
        if contact_id is None or machine:
            continue
        for fact, kinds in _KINDS.items():
            if kind in kinds:
                seen = latest[fact].get(contact_id)
                if seen is None or at > seen:
                    latest[fact][contact_id] = at
    for fact, values in latest.items():
        if values:
            _raise(fact, values)


def note_received(contact_ids: Iterable[int], sent_at: datetime) -> None:
    """Keep ``last_received_at`` for people whose deliveries were just marked sent at
    ``sent_at`` (the queue knows who they were: ``queue.results``)."""
    people = set(contact_ids)
    if people:
        _raise(RECEIVED, dict.fromkeys(people, sent_at))


def _latest(fact: str) -> Subquery:
    """The fact's true value for the contact ``OuterRef("pk")``, computed from what is kept."""
    if fact == RECEIVED:
        sent = _sent().filter(contact=OuterRef("pk")).values("contact")
        return Subquery(sent.annotate(latest=Max("sent_at")).values("latest"))
    events = _events_of(_KINDS[fact]).filter(delivery__contact=OuterRef("pk"))
    return Subquery(events.values("delivery__contact").annotate(latest=Max("at")).values("latest"))


# Arbitrary constant key for pg_advisory_xact_lock: "tidings events".
_EVENTS_LOCK = 0x7E1D_0001


def lock_event_writers() -> None:
    """Serialise the writers of events until the transaction ends: ``events.record_events``
    takes it (two flushing processes never both count a person as new), and so does ``refresh``,
    so a recomputation does not miss an event being written meanwhile and set a fact back past
    it.  SQLite's writers are serialised anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENTS_LOCK])


def refresh(contact_ids: Iterable[int], facts: Sequence[str] = FACTS) -> int:
    """Recompute ``facts`` of these contacts from their kept events and deliveries (after some
    were removed); returns how many contacts changed.  Call inside a transaction."""
    ids = list(contact_ids)
    if not ids:
        return 0
    assert transaction.get_connection().in_atomic_block, "refresh() needs a transaction"
    if OPENED in facts or CLICKED in facts:
        lock_event_writers()
    changed = 0
    for chunk in _chunks(ids):
        values = {fact: _latest(fact) for fact in facts}
        changed += Contact._base_manager.filter(pk__in=chunk).update(**values)
    return changed


def rebuild(*, batch: int = 50_000, progress=None) -> int:
    """Recompute every contact's facts from the kept events and deliveries, a transaction per
    ``batch`` contacts (by id); returns how many contacts' facts were written (PostgreSQL: those
    that changed).  Run it when no campaign is sending (see ``_rebuild_range``).
    ``progress``: called with (contacts done, contacts) after each batch."""
    first_last = Contact._base_manager.aggregate(
        low=Coalesce(Min("pk"), 0), high=Coalesce(Max("pk"), -1)
    )
    low, high = first_last["low"], first_last["high"]
    changed = 0
    for start in range(low, high + 1, batch):
        with transaction.atomic():
            changed += _rebuild_range(start, start + batch)
        if progress is not None:
            progress(min(start + batch, high + 1) - low, high + 1 - low)
    return changed


def _rebuild_range(low: int, high: int) -> int:
    """Set the facts of the contacts with ``low <= id < high``.  The writers of events wait
    meanwhile; a delivery marked sent during the statement may be missed (``rebuild`` is for
    quiet times: the upgrade, a repair)."""
    lock_event_writers()
    contacts = Contact._base_manager.filter(pk__gte=low, pk__lt=high)
    if connection.vendor != "postgresql":
        return contacts.update(**{fact: _latest(fact) for fact in FACTS})
    # PostgreSQL: the range's events and deliveries aggregated once each, set-based (the same
    # statement as the migration that introduced the facts, which also sets unchanged rows aside).
    table = Contact._meta.db_table
    event, delivery = Event._meta.db_table, Delivery._meta.db_table
    sql = f"""
        WITH seen AS (
            SELECT d.contact_id,
                   max(e.at) FILTER (WHERE e.kind IN ('open', 'click')) AS opened,
                   max(e.at) FILTER (WHERE e.kind = 'click') AS clicked
            FROM {event} e JOIN {delivery} d ON d.id = e.delivery_id
            WHERE d.contact_id >= %(low)s AND d.contact_id < %(high)s
              AND NOT e.machine AND e.kind IN ('open', 'click')
            GROUP BY d.contact_id
        ), sent AS (
            SELECT contact_id, max(sent_at) AS received
            FROM {delivery}
            WHERE contact_id >= %(low)s AND contact_id < %(high)s AND status = 'sent'
            GROUP BY contact_id
        ), facts AS (
            SELECT c.id, seen.opened, seen.clicked, sent.received
            FROM {table} c
            LEFT JOIN seen ON seen.contact_id = c.id
            LEFT JOIN sent ON sent.contact_id = c.id
            WHERE c.id >= %(low)s AND c.id < %(high)s
        )
        UPDATE {table} c
        SET last_opened_at = f.opened, last_clicked_at = f.clicked, last_received_at = f.received
        FROM facts f
        WHERE c.id = f.id AND (c.last_opened_at IS DISTINCT FROM f.opened
                               OR c.last_clicked_at IS DISTINCT FROM f.clicked
                               OR c.last_received_at IS DISTINCT FROM f.received)
    """  # noqa: S608 - table names from the models, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"low": low, "high": high})
        return cursor.rowcount
