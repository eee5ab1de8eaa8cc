"""Where personal data lives: every app registers each kind of record it holds about a person.

The access package (Art. 15/20) exports every registered source and erasure (Art. 17,
``rights/erasure.py``) erases every one, so a new kind of personal record is covered by
registering it here — and a test fails for any model that points at a Contact (or stores an
address) without being registered, and for any source the erasure scan finds data left behind by
(tests/rights/test_erasure_scan.py).

The register lives in audience, the lowest app, because every app above registers what it holds
and a person here is a contact (``People``) or an address; rights (the access package, erasure,
retention) reads it.

Erasure runs in two phases, so that no source can hide another's rows: first every source
*finds* its rows (``find``: people -> what it found, usually a list of ids), then each source
*removes* what it found (``remove``), in ``order``.  Nothing is changed before every source has
looked: a source that found its rows through another's (events through the person's deliveries,
bookings through their enquiries) finds them whatever the other does to its own rows later.
Removal deletes exactly the rows found, in SQL (``delete_ids``), without Django's cascade: a row
that still points at a deleted one (a dependent nobody found) makes the database refuse the
erasure at the constraint check, instead of going unnoticed.

Apps register in their ``AppConfig.ready()``::

    from tidings.audience.sources import PersonalData, register
    register(PersonalData(
        name="enquiries",                 # file name stem in the package, key in data.json
        record_kind="enquiry",            # the policy's record kind: why held, how long (or None)
        models=(Enquiry,),                # every model this source covers
        export=export_enquiries,          # (contact) -> list[dict] of JSON-safe rows
        find=find_enquiries,              # (People) -> what to remove (falsy: nothing)
        remove=remove_enquiries,          # (found) -> rows removed or anonymised
        kept=kept_enquiries,              # (People) -> list[Kept]: what a legal hold keeps
    ))

``find`` and ``remove`` must work for many people at once (the retention sweep erases thousands
of people per transaction) and be idempotent (a second run finds nothing).  A source that keeps
something (a legal minimum, the suppression entry) says so in ``kept``: one sentence per hold for
the receipt, with the rows it keeps.

Most sources are the rows of one model that point at the person: ``model_source()`` builds those
from what differs (which rows, which columns, delete or anonymise)::

    register(model_source(
        "enquiries", Enquiry, of="contact", record_kind="enquiry", order=30,
        columns=("channel", ("removed_by_screening", "redaction_note"), "created_at"),
    ))
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db import connection, models
from django.db.models import F, Q, QuerySet
from django.db.models.fields.json import KT


# --- whom an erasure is about -----------------------------------------------------------------
@dataclass(frozen=True)
class People:
    """The people an erasure (or an export) is about: contacts by id, and addresses.

    ``emails`` are the contacts' addresses and any an erasure request names (an address we hold
    no contact for still has its mail, reports and requests found); ``hmacs`` their keyed hashes,
    as the suppression list, bounce reports and requests store them.
    """

    contact_ids: tuple[int, ...] = ()
    emails: tuple[str, ...] = ()
    # The contacts are known to be held by no record: the retention sweep checked, with them
    # locked (``rights.erasure.erase_people_left_with_nothing``), so no source need ask again.
    unheld: bool = False

    @classmethod
    def of(cls, contact: Any = None, *, email: str = "") -> People:
        """One person: a contact (or None) and, optionally, an address a request named."""
        ids = (contact.pk,) if contact is not None and contact.pk is not None else ()
        emails = {e for e in (getattr(contact, "email", ""), email) if e}
        return cls(ids, tuple(sorted(emails, key=str.casefold)))

    @cached_property
    def hmacs(self) -> tuple[str, ...]:
        from .emails import email_hmac

        return tuple(sorted({email_hmac(email) for email in self.emails}))

    def __bool__(self) -> bool:
        return bool(self.contact_ids or self.emails)


# --- what a legal hold keeps ------------------------------------------------------------------
@dataclass(frozen=True)
class Held:
    """Rows an erasure leaves in place: ``columns`` of them (None: the whole row)."""

    model: type[models.Model]
    ids: tuple[int, ...]
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Kept:
    """One thing an erasure keeps: ``sentence`` for the receipt (a whole sentence in plain words,
    with the date it goes when it has one), and the rows it keeps (never stored: for checks)."""

    sentence: str
    held: tuple[Held, ...] = ()


Found = Any  # what a source's find returns and its remove takes: usually a list of ids


class UnheldIds(list):
    """Ids a source found for ``People.unheld`` people: its ``remove`` need not check again
    whether a record holds them (the contacts' source skips that query)."""


@dataclass(frozen=True)
class PersonalData:
    name: str
    record_kind: str | None
    models: tuple[type[models.Model], ...]
    export: Callable[[Any], list[dict[str, Any]]]
    # None: the source removes nothing (the suppression entry: a hold by design).
    find: Callable[[People], Found] | None = None
    remove: Callable[[Found], int] | None = None
    kept: Callable[[People], list[Kept]] | None = None
    order: int = field(default=100)
    # Why it is held, for sources that no single policy record kind explains (the person's own
    # details, the emails we sent them, their requests): one sentence for the access package.
    about: str = ""
    # How long it is kept, for the same sources (a sentence); default: with the records it
    # belongs to.
    retention: str = ""
    title: str = ""  # heading in the package; default: the name, capitalised

    @property
    def heading(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()

    def erase(self, contact: Any) -> int:
        """Find and remove one person's rows of this source alone (tests, one-off tools); an
        erasure of a person runs every source's find first (``rights.erasure``)."""
        if self.find is None or self.remove is None:
            return 0
        found = self.find(People.of(contact))
        return self.remove(found) if found else 0


_SOURCES: dict[str, PersonalData] = {}


def register(source: PersonalData) -> None:
    """Add ``source`` (replacing one of the same name: ``ready()`` may run twice in tests)."""
    if (source.find is None) != (source.remove is None):
        raise ValueError(f"source {source.name!r}: give both find and remove, or neither")
    _SOURCES[source.name] = source


def sources() -> list[PersonalData]:
    """Every registered source, in a stable order (``order``, then name)."""
    return sorted(_SOURCES.values(), key=lambda s: (s.order, s.name))


def source(name: str) -> PersonalData:
    return _SOURCES[name]


def covered_models() -> set[type[models.Model]]:
    return {model for source in _SOURCES.values() for model in source.models}


def plain(value: Any) -> Any:
    """A value as JSON has it: datetimes and dates in ISO 8601, Decimals as strings; nested
    lists and dicts are converted throughout."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return value


def day_in_words(moment: Any) -> str:
    """A date (or the day of an aware datetime, in the controller's time zone) in words:
    "3 March 2032"."""
    from datetime import datetime

    from django.utils import timezone

    if isinstance(moment, datetime):
        moment = timezone.localtime(moment).date()
    return f"{moment.day} {moment:%B %Y}"


def time_in_words(moment: Any) -> str:
    """An aware datetime in the controller's time zone, in words: "3 March 2026 at 14:05"; a
    date as ``day_in_words``."""
    from datetime import datetime

    from django.utils import timezone

    if not isinstance(moment, datetime):
        return day_in_words(moment)
    local = timezone.localtime(moment)
    return f"{day_in_words(local.date())} at {local:%H:%M}"


# --- SQL for many ids at once -----------------------------------------------------------------
class AnyOf(models.Expression):
    """``column IN (ids)`` for a batch of thousands of ids.

    On PostgreSQL it is ``column = ANY(%s)`` with the ids as one array parameter: the statement
    stays short, so the driver does not rewrite thousands of placeholders for every statement of
    every batch (that, measured, was a third of the retention sweep's time).  Elsewhere it is a
    plain IN.
    """

    conditional = True
    output_field = models.BooleanField()

    def __init__(self, column: str | Any, ids: Iterable[Any]) -> None:
        super().__init__()
        self.column: Any = F(column) if isinstance(column, str) else column
        self.ids = list(ids)

    def get_source_expressions(self) -> list[Any]:
        return [self.column]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.column,) = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, Any]:
        column, params = compiler.compile(self.column)
        if not self.ids:
            return "1 = 0", []
        if connection.vendor == "postgresql":
            literal, kind = array_literal(self.ids)
            return f"{column} = ANY(%s::{kind})", [*params, literal]
        return f"{column} IN ({', '.join(['%s'] * len(self.ids))})", [*params, *self.ids]


def array_literal(values: Sequence[Any]) -> tuple[str, str]:
    """``values`` as one PostgreSQL array literal and its type: ``("{1,2,3}", "bigint[]")``.

    Made here with one ``join`` rather than by the driver, which adapts a list element by element
    in Python: measured, 11 ms for each list of 2,000 ids, sent some thirty times per batch of a
    retention sweep.  Integers are written as they are; anything else as a quoted text element.
    """
    if set(map(type, values)) == {int}:
        return "{" + ",".join(map(str, values)) + "}", "bigint[]"
    texts = list(map(str, values))
    if "".join(texts).isalnum() and all(texts) and "null" not in map(str.lower, texts):
        return "{" + ",".join(texts) + "}", "text[]"  # ids, hashes: nothing to quote
    quoted = ('"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"' for t in texts)
    return "{" + ",".join(quoted) + "}", "text[]"


def key_in(field: str, key: str, ids: Iterable[int]) -> Q:
    """Rows whose JSON ``field`` holds one of ``ids`` under ``key`` (``{"contact": 12}``).

    On PostgreSQL it is ``field ->> key = ANY(ids as text)``, which an expression index on
    ``KT(field__key)`` serves (the audit log has them) and whose ids travel as one array; elsewhere
    the JSON lookup ``field__key__in``.
    """
    ids = list(ids)
    if connection.vendor == "postgresql":
        return Q(AnyOf(KT(f"{field}__{key}"), [str(pk) for pk in ids]))
    return Q(**{f"{field}__{key}__in": ids})


def ids_of(queryset: QuerySet) -> list[int]:
    return list(queryset.order_by().values_list("pk", flat=True))


class _Deleted(threading.local):
    """The rows deleted in this thread while the database's own foreign-key triggers are off
    (``rights.erasure.set_based_checks``), for the one check per relation that replaces them."""

    def __init__(self) -> None:
        self.recording = False
        self.rows: list[tuple[type[models.Model], list[int]]] = []


deleted = _Deleted()


def record_deleted(model: type[models.Model], ids: Sequence[int]) -> None:
    if deleted.recording and ids:
        deleted.rows.append((model, list(ids)))


def delete_ids(model: type[models.Model], ids: Sequence[int]) -> int:
    """Delete exactly these rows, in SQL: no model objects, no signals.

    What points at them must have been removed by its own source first: the database's foreign
    keys (checked at the end of the erasure) refuse a row left pointing at a deleted one.  The
    one cascade: rows that go with their parent (``on_delete=CASCADE``) and that no source has as
    its own first model (a message's attachments, listed among its source's further models) are
    deleted with it.  A model someone listens to deletions of is deleted through the ORM, so
    they hear it.
    """
    if not ids:
        return 0
    owned = {source.models[0] for source in _SOURCES.values()}
    for rel, related, column in pointing_relations(model):
        if rel.on_delete is models.CASCADE and related not in owned:
            children = related._base_manager.filter(AnyOf(column, ids))
            delete_ids(related, ids_of(children))
    rows = model._base_manager.filter(AnyOf("pk", ids))
    record_deleted(model, ids)
    if models.signals.pre_delete.has_listeners(model) or models.signals.post_delete.has_listeners(
        model
    ):
        _, per_model = rows.delete()
        return per_model.get(model._meta.label, 0)
    return rows._raw_delete(rows.db)


def update_ids(model: type[models.Model], ids: Sequence[int], **values: Any) -> int:
    """``UPDATE`` exactly these rows (through ``QuerySet`` itself, so that append-only ledgers'
    managers do not refuse the erasure, their one documented exception)."""
    if not ids:
        return 0
    return QuerySet(model).filter(AnyOf("pk", ids)).update(**values)


# --- a contact that something still holds -----------------------------------------------------
def _contact_model() -> type[models.Model]:
    from .models import Contact

    return Contact


def pointing_relations(
    model: type[models.Model],
) -> Iterator[tuple[models.ForeignObjectRel, type[models.Model], str]]:
    """The one-to-many and one-to-one relations pointing at ``model`` (hidden ones too): each
    with the model it comes from and that model's column holding ``model``'s id."""
    for rel in model._meta.get_fields(include_hidden=True):
        if (
            isinstance(rel, models.ForeignObjectRel)
            and rel.auto_created
            and not rel.concrete
            and (rel.one_to_many or rel.one_to_one)
            and isinstance(rel.related_model, type)
        ):
            yield rel, rel.related_model, rel.field.attname


def _relations() -> list[models.ForeignObjectRel]:
    """Every relation pointing at Contact, hidden ones (``related_name="+"``) included."""
    return [
        f
        for f in _contact_model()._meta.get_fields(include_hidden=True)
        if isinstance(f, models.ForeignObjectRel)
        and f.auto_created
        and not f.concrete
        and (f.one_to_many or f.one_to_one or f.many_to_many)
    ]


def holding_relations() -> list[models.ForeignObjectRel]:
    """The relations whose rows keep a contact: all but the consent ledger (whose rows become
    anonymous tombstones), SET_NULL ones (deliveries, sent mail, requests: they outlive the
    person without them), many-to-many links, and models that say they hold no one
    (``HOLDS_CONTACT = False``: derived rows that go with the person, such as a journey's
    record of who its segment matched)."""
    from .models import ConsentEvent

    holding = []
    for rel in _relations():
        if rel.related_model is ConsentEvent or rel.many_to_many:
            continue
        if getattr(rel.related_model, "HOLDS_CONTACT", True) is False:
            continue
        if rel.on_delete in (models.SET_NULL, models.SET_DEFAULT):
            continue
        holding.append(rel)
    return holding


def holds_contact(excluding: Mapping[type[models.Model], QuerySet] | None = None) -> Q:
    """Contacts that some record still holds, ignoring the rows of ``excluding`` (a dry run's
    expired records, which would be gone)."""
    excluding = excluding or {}
    condition = Q()
    for rel in holding_relations():
        rows = rel.related_model._base_manager.filter(**{rel.field.name: models.OuterRef("pk")})
        if rel.related_model in excluding:
            # Row by row (NOT EXISTS on its own id), never NOT IN (a million expired ids): a
            # NOT IN set too big for work_mem is scanned again for every contact.
            expired = excluding[rel.related_model].filter(pk=models.OuterRef("pk"))
            rows = rows.exclude(models.Exists(expired))
        condition |= Q(models.Exists(rows))
    return condition


# --- sources of one model ---------------------------------------------------------------------
# A column of an exported row: an attribute path ("organisation.name": a missing related object
# reads as "") or a function of the row (``Booking.get_status_display``).
Column = str | Callable[[Any], Any]
Columns = Sequence[str | tuple[str, Column]]  # "name" (heading and attribute) or (heading, column)


def _value(row: models.Model, column: Column) -> Any:
    if callable(column):
        return column(row)
    value: Any = row
    for step in column.split("."):
        if value is None:
            return ""
        value = getattr(value, step)
    return value


def model_rows(queryset: QuerySet, columns: Columns) -> list[dict[str, Any]]:
    """Each row of ``queryset`` as a JSON-safe dict of ``columns``, in the queryset's order."""
    pairs = [(c, c) if isinstance(c, str) else c for c in columns]
    return [plain({heading: _value(row, column) for heading, column in pairs}) for row in queryset]


def model_source(
    name: str,
    model: type[models.Model],
    *,
    of: str | Callable[[People], QuerySet],
    record_kind: str | None,
    columns: Columns = (),
    order_by: Sequence[str] = ("created_at", "pk"),
    related: Sequence[str] = (),
    anonymise: Mapping[str, Any] | None = None,
    **details: Any,
) -> PersonalData:
    """The source for the rows of ``model`` that belong to a person.

    ``of``: the lookup from the model to the contact ("support_contact__contact"), or a function
    (People) -> queryset.  The export is those rows' ``columns`` (``related``: select_related);
    erasure deletes them, or with ``anonymise`` sets those fields instead (the rows stay, as
    anonymous statistics).  ``export``, ``find``, ``remove`` and the other ``PersonalData``
    fields may be given in ``details``.
    """

    def rows(people: People) -> QuerySet:
        if callable(of):
            return of(people)
        return model._base_manager.filter(AnyOf(f"{of}_id", people.contact_ids))

    def export(contact: Any) -> list[dict[str, Any]]:
        queryset = rows(People.of(contact)).order_by(*order_by)
        return model_rows(queryset.select_related(*related) if related else queryset, columns)

    def find(people: People) -> list[int]:
        queryset = rows(people)
        if anonymise is not None:  # only the rows still to change: a second run finds none
            queryset = queryset.exclude(**anonymise)
        return ids_of(queryset)

    def remove(ids: list[int]) -> int:
        if anonymise is not None:
            return update_ids(model, ids, **anonymise)
        return delete_ids(model, ids)

    details.setdefault("export", export)
    details.setdefault("find", find)
    details.setdefault("remove", remove)
    return PersonalData(name=name, record_kind=record_kind, models=(model,), **details)
