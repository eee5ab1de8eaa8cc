"""Where personal data lives: every app registers each kind of record it holds about a contact.

The access package (Art. 15/20) exports every registered source and erasure (Art. 17) erases every
one, so a new kind of personal record is covered by registering it here — and a test fails for
any model that points at a Contact (or stores an address) without being registered.

Apps register in their ``AppConfig.ready()``::

    from tidings.rights.sources import PersonalData, register
    register(PersonalData(
        name="enquiries",                 # heading in the package, file name stem
        record_kind="enquiry",            # the policy's record kind: why held, how long (or None)
        models=(Enquiry,),                # every model this source covers
        export=export_enquiries,          # (contact) -> list[dict] of JSON-safe rows
        erase=erase_enquiries,            # (contact) -> int rows removed or anonymised
    ))

``erase`` must be idempotent (safe to re-run after a crash) and must keep what a legal minimum
keeps (report those through ``kept``: (contact) -> list[dict] of {"what", "until"}).

Most sources are the rows of one model that point at the contact: ``model_source()`` builds
those from what differs (which rows, which columns, delete or anonymise)::

    register(model_source(
        "enquiries", Enquiry, of="contact", record_kind="enquiry", order=30,
        columns=("channel", ("removed_by_screening", "redaction_note"), "created_at"),
    ))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.models import QuerySet


@dataclass(frozen=True)
class PersonalData:
    name: str
    record_kind: str | None
    models: tuple[type[models.Model], ...]
    export: Callable[[Any], list[dict[str, Any]]]
    erase: Callable[[Any], int]
    kept: Callable[[Any], list[dict[str, Any]]] | None = None
    order: int = field(default=100)
    # Why it is held, for sources that no single policy record kind explains (the person's own
    # details, the emails we sent them, their requests): one sentence for the access package.
    about: str = ""
    title: str = ""  # heading in the package; default: the name, capitalised

    @property
    def heading(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()


_SOURCES: dict[str, PersonalData] = {}


def register(source: PersonalData) -> None:
    """Add ``source`` (replacing one of the same name: ``ready()`` may run twice in tests)."""
    _SOURCES[source.name] = source


def sources() -> list[PersonalData]:
    """Every registered source, in a stable order (``order``, then name)."""
    return sorted(_SOURCES.values(), key=lambda s: (s.order, s.name))


def source(name: str) -> PersonalData:
    return _SOURCES[name]


def covered_models() -> set[type[models.Model]]:
    return {model for source in _SOURCES.values() for model in source.models}


def plain(value: Any) -> Any:
    """A value as JSON has it: datetimes and dates in ISO 8601, None as "" for CSV-friendliness
    is left to the writer; nested lists and dicts are converted throughout."""
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


def delete_rows(queryset: QuerySet) -> int:
    """Erase by deleting (idempotent: a second run finds nothing); the rows removed."""
    deleted, _ = queryset.delete()
    return deleted


def model_source(
    name: str,
    model: type[models.Model],
    *,
    of: str | Callable[[Any], QuerySet],
    record_kind: str | None,
    columns: Columns = (),
    order_by: Sequence[str] = ("created_at", "pk"),
    related: Sequence[str] = (),
    anonymise: Mapping[str, Any] | None = None,
    **details: Any,
) -> PersonalData:
    """The source for the rows of ``model`` that belong to a contact.

    ``of``: the lookup from the model to the contact ("support_contact__contact"), or a function
    (contact) -> queryset.  The export is those rows' ``columns`` (``related``: select_related);
    erasure deletes them, or with ``anonymise`` sets those fields instead (the rows stay, as
    anonymous statistics).  ``export``, ``erase`` and the other ``PersonalData`` fields may be
    given in ``details``.
    """

    def rows(contact: Any) -> QuerySet:
        return of(contact) if callable(of) else model.objects.filter(**{of: contact})

    def export(contact: Any) -> list[dict[str, Any]]:
        queryset = rows(contact).order_by(*order_by)
        return model_rows(queryset.select_related(*related) if related else queryset, columns)

    def erase(contact: Any) -> int:
        if anonymise is not None:
            return rows(contact).update(**anonymise)
        return delete_rows(rows(contact))

    details.setdefault("export", export)
    details.setdefault("erase", erase)
    return PersonalData(name=name, record_kind=record_kind, models=(model,), **details)
