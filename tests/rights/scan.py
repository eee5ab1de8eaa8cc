"""A scan of every table and column of the database for anything that still points at a person.

Looks, in every row of every table the database has (the models', many-to-many tables, Django's
own, the task queue's), at every column: integers (foreign keys and plain ones) equal to the
person's contact id or one of their delivery ids, and text, JSON and binary values (mail in the
outbox, attachments, audit details, webhook payloads) holding one of their strings (their tag,
address, name and every value planted for them, the keyed hash of their address) or one of
those ids as a number.  ``generators.distinct_ids`` makes ids unambiguous: each table numbers
its rows from its own range, so a contact id found anywhere is that contact's.

What a legal hold keeps (``Held``: the rows, and which of their columns) is allowed to remain;
anything else is a ``Hit``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from email import policy
from email.parser import BytesParser

from django.apps import apps
from django.db import connection

from tidings.audience.sources import Held, Kept

from .generators import Person

# Bookkeeping, not data: the migrations applied, and SQLite's next id per table.
NOT_DATA = {"django_migrations", "sqlite_sequence"}


@dataclass(frozen=True)
class Hit:
    table: str
    column: str
    row: object
    what: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} (row {self.row}): {self.what}"


class LeftBehind(AssertionError):
    """The scan found something of an erased person that no legal hold explains."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        tables = sorted({hit.table for hit in hits})
        lines = "\n".join(f"  {hit}" for hit in hits[:40])
        super().__init__(f"{len(hits)} values left behind in {', '.join(tables)}:\n{lines}")


def _own_keys() -> dict[str, str]:
    """table -> its primary key column, for tables whose key is a plain number (a row's own id
    says nothing about anyone; a key that is a foreign key, as a one-to-one's, is scanned)."""
    keys = {}
    for model in apps.get_models(include_auto_created=True):
        pk = model._meta.pk
        if not pk.is_relation:
            keys[model._meta.db_table] = pk.column
    return keys


def _allowed(held: Iterable[Held]) -> dict[tuple[str, object], tuple[str, ...] | None]:
    allowed: dict[tuple[str, object], tuple[str, ...] | None] = {}
    for hold in held:
        table = hold.model._meta.db_table
        columns = (
            None
            if hold.columns is None
            else tuple(hold.model._meta.get_field(name).column for name in hold.columns)
        )
        for pk in hold.ids:
            allowed[(table, pk)] = columns
    return allowed


def holds(kept: Iterable[Kept]) -> list[Held]:
    return [held for k in kept for held in k.held]


_FOLD = re.compile(r"\r?\n[ \t]")  # a folded line (RFC 5322 headers, RFC 5545 calendars)


def _mime_text(raw: bytes) -> str:
    """A stored email as a reader would see it: every header decoded (encoded words) and every
    part's content decoded (base64, quoted-printable), attachments such as an .ics included."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    pieces = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        pieces.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    return "\n".join(pieces)


def _text(value: object) -> str | None:
    """A value as text to search in: JSON as its text, bytes decoded (and a stored email
    decoded as its reader sees it), folded lines unfolded; None for values that cannot hold
    anyone's data (dates, numbers)."""
    if isinstance(value, datetime | date | time | timedelta | Decimal | float | bool):
        return None
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        text = raw.decode("utf-8", "replace")
        if re.search(r"^(Subject|To|From|MIME-Version):", text, re.MULTILINE):
            text += "\n" + _mime_text(raw)
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)  # text, an IP address, a UUID
    # JSON keeps line breaks escaped: unescaped, a folded .ics line in it unfolds too.
    lines = text.replace("\\r\\n", "\r\n").replace("\\n", "\n")
    return text + "\n" + _FOLD.sub("", lines)


def scan(person: Person, held: Iterable[Held] = ()) -> list[Hit]:
    """Everything in the database that still points at ``person``, outside ``held``."""
    numbers = {person.contact.pk: "contact id"} | dict.fromkeys(person.delivery_ids, "delivery id")
    strings = {s.casefold() for s in {person.tag, person.hmac[:32], *person.values}}
    in_text = re.compile(r"(?<!\d)(" + "|".join(str(n) for n in numbers) + r")(?!\d)")
    allowed = _allowed(held)
    own_keys = _own_keys()
    hits: list[Hit] = []
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            if table in NOT_DATA:
                continue
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            key = own_keys.get(table)
            key_at = columns.index(key) if key in columns else None
            for row in cursor.fetchall():
                row_id = row[key_at] if key_at is not None else None
                permitted = allowed.get((table, row_id), ())
                for column, value in zip(columns, row, strict=True):
                    if value is None or column == key:
                        continue
                    if permitted is None or column in (permitted or ()):
                        continue
                    if isinstance(value, int) and not isinstance(value, bool):
                        if value in numbers:
                            hits.append(Hit(table, column, row_id, numbers[value]))
                        continue
                    text = _text(value)
                    if not text:
                        continue
                    folded = text.casefold()
                    found = sorted(s for s in strings if s in folded)
                    if found:
                        hits.append(Hit(table, column, row_id, f"their {found[0]!r}"))
                    elif match := in_text.search(text):
                        hits.append(
                            Hit(table, column, row_id, numbers[int(match.group(1))] + " in text")
                        )
    return hits


def assert_nothing_left(person: Person, held: Iterable[Held] = ()) -> None:
    hits = scan(person, held)
    if hits:
        raise LeftBehind(hits)
