"""Erasure: the one module that removes people's data, for a request and for the retention sweep.

Two callers, one path:

- a data-subject request (``rights.actions.do_erase_contact``) erases one person:
  ``erase_person``, which also suppresses their address and returns what the receipt says;
- the retention sweep (``rights.retention.run_retention``) deletes expired records
  (``delete_expired``) and then erases, thousands at a time, the people those records were the
  last hold on (``erase_people_left_with_nothing``).

Both erase people through ``erase_people``: every registered source (``audience.sources``) first
*finds* its rows for all of them, before anything changes, then each *removes* what it found, in
the sources' order; the person's contact row (the last source) goes once nothing holds it, or
keeps only what a legal hold needs.  Rows are deleted in SQL by id, never through Django's
cascade collector: what points at a deleted row must have been found by its own source, and the
foreign keys are checked before the transaction ends (``check_references``), so a forgotten
dependent makes the erasure fail instead of leaving data behind.

After an erasure commits, ``tidings.signals.contacts_erased`` is sent once with the keyed hashes
of every erased person's address (never an id: none survives), then ``contact_erased`` once per
person, for listeners that must outlive the erasure, such as the erasure journal that re-applies
it after a backup is restored (it listens to the first: one write for a whole batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.db.models import QuerySet
from django.utils import timezone

from tidings import signals
from tidings.audience.models import Contact, Suppression
from tidings.audience.sources import (
    AnyOf,
    Found,
    Kept,
    People,
    deleted,
    holding_relations,
    holds_contact,
    pointing_relations,
    record_deleted,
    sources,
)
from tidings.audience.suppression import do_suppress

REQUEST = "request"
RETENTION = "retention"


# --- every source: find, then remove ----------------------------------------------------------
def find_all(people: People, *, unheld: bool = False) -> dict[str, Found]:
    """What every source holds about ``people``, found before anything is changed.

    ``unheld``: the people's contacts are known to be held by no record (the retention sweep
    checked, under lock): the tables whose rows hold a contact (subscriptions, enquiries...)
    have none of theirs, so those sources are not asked.  The foreign keys would refuse the
    contact's deletion if one had a row after all.
    """
    if not people:
        return {}
    skip = {rel.related_model for rel in holding_relations()} if unheld else set()
    found = {}
    for source in sources():
        if source.find is None or (skip and set(source.models) <= skip):
            continue
        found[source.name] = source.find(people)
    return found


def remove_all(found: dict[str, Found]) -> dict[str, int]:
    """Each source removes what it found, in the sources' order; the rows each changed."""
    counts: dict[str, int] = {}
    for source in sources():
        rows = found.get(source.name)
        if rows and source.remove is not None:
            count = source.remove(rows)
            if count:
                counts[source.name] = count
    return counts


def check_references() -> None:
    """Have the database check now, inside the transaction, that no row points at a deleted one
    (a dependent no source found); raises IntegrityError if one does.

    PostgreSQL checks the deferred foreign keys of the rows this transaction touched, which costs
    next to nothing.  SQLite checks them when the transaction commits (its counter of deferred
    violations is kept as rows change), which refuses the commit just the same; checking earlier
    would scan whole tables, so it is left to the commit (tests check explicitly).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


# --- checking references in bulk ---------------------------------------------------------------
_TRIGGERS_OFF: bool | None = None  # may this process's role switch them off (None: not asked)


def _may_switch_triggers_off() -> bool:
    """Whether the database lets this session skip its own trigger-based foreign-key checks:
    PostgreSQL, a role that may set ``session_replication_role`` (a superuser, or one granted
    ``SET ON PARAMETER session_replication_role``), and no trigger of anyone's own in the
    database (which "replica" would silence too: a counter kept by a trigger would drift)."""
    global _TRIGGERS_OFF
    if connection.vendor != "postgresql" or _TRIGGERS_OFF is False:
        return False
    if _TRIGGERS_OFF is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE NOT tgisinternal)")
            if cursor.fetchone()[0]:
                _TRIGGERS_OFF = False
                return False
    if _TRIGGERS_OFF:  # allowed before: no savepoint needed (a round trip each)
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
        return True
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:
        _TRIGGERS_OFF = False
        return False
    _TRIGGERS_OFF = True
    return True


def verify_deleted(rows: Iterable[tuple[type[models.Model], list[int]]]) -> None:
    """Raise IntegrityError if a row anywhere still points at one of these deleted rows.

    One statement: ``SELECT EXISTS (...) OR EXISTS (...)``, an indexed look-up per relation
    pointing at each model, the ids as one array (a round trip costs more than the look-ups)."""
    checks: list[tuple[str, QuerySet]] = []
    for model, ids in rows:
        for _rel, related, column in pointing_relations(model):
            pointing = related._base_manager.filter(AnyOf(column, ids)).values("pk")
            checks.append((f"{related._meta.label}.{column} -> {model._meta.label}", pointing))
    if not checks:
        return
    parts, params = [], []
    for _, queryset in checks:
        sql, more = queryset[:1].query.sql_with_params()
        parts.append(f"EXISTS ({sql})")
        params += list(more)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " OR ".join(parts), params)
        if not cursor.fetchone()[0]:
            return
    broken = [name for name, queryset in checks if queryset.exists()]
    raise IntegrityError(
        f"{', '.join(broken)}: rows still point at deleted ones (a source must find them)"
    )


@contextmanager
def set_based_checks() -> Iterator[None]:
    """Check the references of what is deleted inside the block once, set-based, instead of row
    by row (PostgreSQL, when the role may: ``_may_switch_triggers_off``; elsewhere the block runs
    as it is and the database's own checks apply).

    Deleting a contact makes PostgreSQL run one foreign-key check per relation pointing at
    contacts (nine) for each row, at commit: measured on 50,000 contacts, 85% of the time of the
    whole change.  Here those row-by-row triggers are off for this transaction's own statements
    only (``SET LOCAL session_replication_role = replica``; other sessions keep theirs, so a row
    inserted meanwhile for a contact being deleted still fails), and ``verify_deleted`` checks
    every relation of every deleted model with one indexed query over the batch's ids.  The
    contacts are locked first (``erase_people_left_with_nothing``), so nothing can point at them
    between the check and the commit.  Used by the retention sweep's batches.
    """
    if not _may_switch_triggers_off():
        yield
        return
    deleted.recording, deleted.rows = True, []
    try:
        yield
        verify_deleted(deleted.rows)
    finally:
        deleted.recording, deleted.rows = False, []
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = origin")


def erase_people(people: People, *, unheld: bool = False) -> dict[str, int]:
    """Erase everything every source holds about ``people`` (inside the caller's transaction),
    except what a legal hold keeps.  Returns rows changed per source.  ``unheld``: see
    ``find_all``."""
    counts = remove_all(find_all(people, unheld=unheld))
    if not deleted.recording:  # else set_based_checks verifies what was deleted
        check_references()
    return counts


def kept_for(people: People) -> list[Kept]:
    """What the sources keep about ``people`` after their erasure (legal holds)."""
    kept: list[Kept] = []
    for source in sources():
        if source.kept is not None:
            kept += source.kept(people)
    return kept


def _announce(hmacs: Iterable[str], reason: str, erased_at: datetime) -> None:
    """Once the transaction has committed, send ``contacts_erased`` once with every person's
    hash (the erasure journal writes them with one ``fsync``: one per person was, measured, 90%
    of a retention sweep's time), then ``contact_erased`` for each person."""
    hmacs = tuple(sorted(set(hmacs)))

    def send() -> None:
        signals.contacts_erased.send(
            sender=Contact, email_hmacs=hmacs, erased_at=erased_at, reason=reason
        )
        for value in hmacs:
            signals.contact_erased.send(
                sender=Contact, email_hmac=value, erased_at=erased_at, reason=reason
            )

    if hmacs:
        transaction.on_commit(send)


# --- one person, on request -------------------------------------------------------------------
@dataclass
class Erasure:
    """What erasing one person did: rows changed per source, and what legal holds keep."""

    counts: dict[str, int] = field(default_factory=dict)
    kept: list[Kept] = field(default_factory=list)
    contact_id: int | None = None


@transaction.atomic
def erase_person(
    contact: Contact | None, *, email: str = "", actor: Any = None, reason: str = REQUEST
) -> Erasure:
    """Erase one person (Art. 17): every source, then the contact, and suppress the address by
    its keyed hash (reason "erased"), so no import or form brings it back unless the person
    confirms a new sign-up themselves.  ``contact`` None: whoever holds ``email`` (or nobody:
    the address's mail, reports and requests are still found, and it is suppressed).

    One transaction; running it again (the same contact, or one already gone) finds nothing
    more to do.  The caller writes the audit entry (``do_erase_contact``).
    """
    if contact is not None:
        email = email or contact.email
        contact = Contact.objects.select_for_update().filter(pk=contact.pk).first()
    if contact is None and email:
        contact = Contact.objects.select_for_update().with_email(email).first()
    people = People.of(contact, email=email)
    # Contacts of the same mailbox that the upgrade to case-folded address keys kept apart
    # (audience migration 0011) until an operator merges them, and the one holding the key
    # when erasing one of those: the same person, erased together (the address is suppressed
    # for all of them alike).
    twins: list[Contact] = []
    if email:
        locked = Contact.objects.select_for_update()
        twins = [*locked.with_email(email)[:1], *locked.kept_apart(email)]
        twins = [t for t in twins if t.pk not in people.contact_ids]
    if twins:
        people = People(
            (*people.contact_ids, *(t.pk for t in twins)),
            tuple(sorted({*people.emails, *(t.email for t in twins)}, key=str.casefold)),
        )
    result = Erasure(contact_id=contact.pk if contact is not None else None)
    result.counts = erase_people(people)
    if email:
        do_suppress(email, Suppression.Reason.ERASED, actor=actor, actor_label="rights")
    result.kept = kept_for(people)
    _announce(people.hmacs, reason, timezone.now())
    return result


# --- many people, by the retention sweep ------------------------------------------------------
def erase_people_left_with_nothing(candidate_ids: Iterable[int]) -> int:
    """Erase those of these contacts that no record holds any more; returns how many went.

    Call inside the transaction that deleted their expired records.  The contacts are locked
    first, so a record added for one of them meanwhile either is seen (and the contact kept) or
    waits and then fails on the missing contact, never leaving a record without its person.
    """
    candidates = sorted(set(candidate_ids))
    if not candidates:
        return 0
    left = list(
        Contact.objects.select_for_update()
        .filter(AnyOf("pk", candidates))
        .exclude(holds_contact())
        .values_list("pk", "email")
    )
    if not left:
        return 0
    people = People(tuple(pk for pk, _ in left), tuple(email for _, email in left), unheld=True)
    with set_based_checks():
        counts = erase_people(people, unheld=True)
    _announce(people.hmacs, RETENTION, timezone.now())
    return counts.get("contact", 0)


def delete_expired(model: type[models.Model], ids: Sequence[int]) -> int:
    """Delete expired records of ``model`` and what depends on them, in SQL, by id.

    What the records' own rule ends takes its dependents with it, as the models declare
    (``on_delete``): CASCADE rows are deleted first (recursively, a statement per relation),
    SET_NULL ones are cleared, and anything PROTECT-ed is refused by the foreign keys.  No model
    objects are built, unlike Django's collector (which, measured, was most of a sweep's time).
    A model someone listens to deletions of is deleted through the ORM, so they hear it.
    Returns the rows of ``model`` deleted.
    """
    if not ids:
        return 0
    ids = list(ids)
    record_deleted(model, ids)
    if models.signals.pre_delete.has_listeners(model) or models.signals.post_delete.has_listeners(
        model
    ):
        _, per_model = model._base_manager.filter(AnyOf("pk", ids)).delete()
        return per_model.get(model._meta.label, 0)
    for rel, related, column in pointing_relations(model):
        if rel.on_delete is models.CASCADE:
            children = list(
                related._base_manager.filter(AnyOf(column, ids)).values_list("pk", flat=True)
            )
            delete_expired(related, children)
        elif rel.on_delete is models.SET_NULL:
            related._base_manager.filter(AnyOf(column, ids)).update(**{column: None})
    rows = model._base_manager.filter(AnyOf("pk", ids))
    return rows._raw_delete(rows.db)
