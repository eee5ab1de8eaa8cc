"""Importing contacts from a CSV file into a list.

The contract, in the order a row meets it:

- The file is streamed (csv over a text stream, memory flat whatever its size).  UTF-8 with or
  without a BOM; if the first megabyte is not valid UTF-8, Windows-1252 (or Latin-1 when even that
  fails).  The delimiter is whichever of ``,`` ``;`` tab ``|`` the header line has most of.
  Blank lines are skipped; quoted fields may span lines, and every line number reported is the
  physical line on which the row *starts*.
- Columns map to the policy's fields by their header (case, spaces, underscores and punctuation
  ignored; common aliases and the exports of Mailchimp, listmonk, Brevo and HubSpot known), or by
  the operator's ``column_map``.  Only fields the policy's newsletter purpose collects are stored;
  every other column is reported as ignored and never read.  listmonk's ``attributes`` JSON column
  is read the same way, key by key.
- A row is *bad* (reported with its line and reason, not imported) when its address is invalid,
  a field the purpose requires is blank, or a value is too long for its column.
- A row whose address (HMAC) or domain is suppressed is skipped: counted, and listed in the report
  by line number only, never with its values.
- Within the file, the first row for an address wins; later ones are reported as
  "duplicate of line N" and not merged.
- An existing contact keeps what it holds: only its blank fields are filled from the file.  A
  contact already confirmed on the list is unchanged; a pending subscription is confirmed; one who
  left the list (unsubscribed, bounced, complained) is skipped and never re-subscribed.
- Every subscription created or confirmed gets one ConsentEvent (granted, source import,
  ``source_ref="import:<id>"``, wording = the operator's statement of the consent source).
  Re-running the same file changes nothing and writes no event.

Rows are written in batches of ``BATCH_ROWS``, one transaction each, together with the Import
row's progress, so the counts always match what is committed.  A dry run does all of it inside one
transaction that is rolled back.  Nothing here logs or raises with personal data in the message.

How PostgreSQL's import is made fast (the target: a 1M-row file at 40,000 rows/s, a sixth of the
speed of a bare COPY into one indexed table; peak RSS under 250 MB):

- Each new contact costs the server three inserts, eight index entries and five foreign-key
  checks (Django's FKs are DEFERRABLE INITIALLY DEFERRED: checked one by one at commit, ~3.5 µs
  each, which no statement shape avoids).  Audience migration 0006 dropped six indexes the
  import paid for and no query used (FK indexes duplicated by composite ones, and a Lower("name")
  index the search could not use): 40 -> 35 µs of server time a row.
- New rows travel by COPY into a temporary staging table, then one INSERT ... SELECT creates the
  contacts, their subscriptions and consent events, ids never leaving the server
  (PostgresWriter.create_contacts).  Dumping the values as arrays instead cost the importing
  process ~6 µs a row in psycopg's Python code.
- While no address of the last batch was taken, that INSERT runs without ON CONFLICT in a
  savepoint, falling back to ON CONFLICT DO NOTHING if one is (35 -> 31 µs a row).
- Transactions commit with synchronous_commit off: safe because an import is idempotent, and a
  server crash that loses the last commits is repaired by running it again (as the worker does).
- The parser costs ~6.5 µs a row (csv ~1.3): cells stripped once, HMAC keys padded once,
  ASCII addresses spared NFC, and Python's cyclic GC run 50 times less often (_fewer_collections).
- Files over PARALLEL_MIN_BYTES are written by WRITERS connections at once (ParallelWrite): the
  parser's thread screens each batch (first row of an address, suppressions) and splits it by
  address, so a later duplicate always reaches the writer that wrote the first row, in file
  order; each writer's transaction adds its part's counts to the Import row.  One connection
  cannot pass ~32,000 rows/s: its server process needs ~31 µs a row; the importing process ~12.
- Left: the five foreign-key checks are 17 of those 31 µs.  Without the database constraints of
  the three that point at the same list and wording (PROTECT and CASCADE are Django's, and would
  still hold for the ORM) the server measured ~20 µs a row; kept, as a decision about the
  ledger's integrity rather than speed.

Measured with ``bench/import_contacts.py --rows 1000000`` on this 2-core machine, with other
benchmarks running beside it (so the figures move with them; the ratio to COPY is from the same
run, COPY itself at 185,000-198,000 rows/s where DESIGN.md has 240,000 for an idle machine):

  PostgreSQL  before (arrays, ON CONFLICT, one connection): 17,600-18,800 rows/s, 10.3-10.5x
              COPY's time, peak RSS 148 MB; now: 40,300-41,800 rows/s, 4.6-4.9x, peak RSS 142 MB
              (20,000-26,000 rows/s, 5.4-8.0x, while the machine was heavily loaded).
  SQLite      before: 22,700 rows/s, 4.9x executemany's time; now: 32,300 rows/s, 3.3-3.4x;
              peak RSS 202 MB either way (64 MB of it SQLite's page cache, _bulk_session).
"""

# SQL here is built from model metadata (quote_name'd table and column names) and placeholders;
# every value travels as a parameter or as COPY data (escaped by psycopg).
# ruff: noqa: S608

from __future__ import annotations

import codecs
import contextlib
import csv
import gc
import hashlib
import json
import logging
import queue
import re
import secrets
import threading
import time
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tidings.policy import get_policy
from tidings.policy.ropa import safe_cell
from tidings.rights.audit import audit

from .actions import wording
from .emails import InvalidEmail, email_domain, normalise_email
from .models import (
    ConsentEvent,
    Contact,
    Import,
    MailingList,
    Subscription,
    SuppressedDomain,
    Suppression,
    imports_dir,
)

log = logging.getLogger(__name__)

PURPOSE = "newsletter"
# Rows a transaction: larger batches cost SQLite fewer page writes per row (measured at 300,000
# rows: 5,000 -> 12.8 s, 20,000 -> 9.8 s); PostgreSQL did not care (50,000 saved no server time
# and took the peak RSS from 142 to 238 MB).  A SQLite batch holds the write lock for ~0.6 s,
# which other writers wait out (busy timeout 20 s).
BATCH_ROWS = 20_000
SNIFF_BYTES = 1 << 20
DELIMITERS = (",", ";", "\t", "|")

# Pseudo-fields a column can map to besides the policy's own fields.
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
ATTRIBUTES = "attributes"  # listmonk: a JSON object of further fields
IGNORE = ""

# The stored columns, in the order rows carry them (email travels separately).
STORED_COLUMNS = tuple(f for f in Contact.COLUMN_FIELDS if f != "email")

# Header aliases, compared after _compact() (case-folded, letters and digits only).
ALIASES: dict[str, str] = {
    **dict.fromkeys(
        ("email", "emailaddress", "mail", "emailaddr", "mailaddress", "courriel", "subscriber"),
        "email",
    ),
    **dict.fromkeys(
        ("name", "fullname", "contactname", "displayname", "subscribername", "nom complet"),
        "name",
    ),
    **dict.fromkeys(("firstname", "fname", "givenname", "forename", "prenom"), FIRST_NAME),
    **dict.fromkeys(("lastname", "lname", "surname", "familyname"), LAST_NAME),
    **dict.fromkeys(
        (
            "company",
            "companyname",
            "organisation",
            "organization",
            "organisationname",
            "organizationname",
            "org",
            "employer",
            "business",
        ),
        "company",
    ),
    **dict.fromkeys(
        (
            "phone",
            "phonenumber",
            "telephone",
            "tel",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "mobilephonenumber",
            "cellphone",
            "sms",
            "workphone",
        ),
        "phone",
    ),
    **dict.fromkeys(("jobtitle", "title", "position", "role", "jobrole", "job"), "job_title"),
    **dict.fromkeys(
        ("workaddress", "address", "businessaddress", "postaladdress", "streetaddress"),
        "work_address",
    ),
    "attributes": ATTRIBUTES,
    "attribs": ATTRIBUTES,
}

# What a spreadsheet-safe cell (policy.ropa.safe_cell, used for the report) adds in front of a
# value; stripped on the way in so a corrected report can be imported again unchanged.
_FORMULA_ESCAPE = re.compile(r"^'(?=[=+\-@\t\r])")


# The ConsentEvent fields an import writes, in the order both writers (ORM and SQL) use them.
EVENT_COLUMNS = (
    "contact",
    "purpose",
    "channel",
    "mailing_list",
    "topic",
    "action",
    "at",
    "source",
    "source_ref",
    "wording",
)


class ImportFailed(Exception):
    """Unusable input or a failed run.  The message is one line and holds no personal data."""


def _compact(header: str) -> str:
    return re.sub(r"[\W_]+", "", header.casefold())


# --- the file ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileFormat:
    encoding: str  # a Python codec name: utf-8-sig, utf-8, cp1252 or latin-1
    delimiter: str


def detect_format(path: Path) -> FileFormat:
    """Encoding and delimiter, from the first megabyte (cheap: the file is not read twice)."""
    with path.open("rb") as fp:
        sample = fp.read(SNIFF_BYTES)
        complete = not fp.read(1)
    if sample.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    else:
        try:
            # final=False: a sample cut inside a multi-byte character is still valid UTF-8.
            codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
            encoding = "utf-8"
        except UnicodeDecodeError:
            try:
                sample.decode("cp1252")
                encoding = "cp1252"
            except UnicodeDecodeError:  # bytes cp1252 leaves undefined: Latin-1 has them all
                encoding = "latin-1"
    text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
    header = next((line for line in text.splitlines() if line.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", header)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    delimiter = max(DELIMITERS, key=lambda d: counts[d])
    return FileFormat(encoding, delimiter if counts[delimiter] else ",")


_decode_errors = 0


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    global _decode_errors
    _decode_errors += 1
    return codecs.replace_errors(exc)


codecs.register_error("tidings_import", _count_and_replace)


@dataclass(slots=True)
class SourceRow:
    line: int  # physical line on which the row starts
    values: list[str]


class CsvSource:
    """The rows of a CSV file after its header, with line numbers and progress in bytes."""

    def __init__(self, path: Path, fmt: FileFormat):
        self.path = path
        self.format = fmt
        self.total_bytes = path.stat().st_size
        self._fp = path.open(encoding=fmt.encoding, errors="tidings_import", newline="")
        self._reader = csv.reader(self._fp, delimiter=fmt.delimiter)
        self.header: list[str] = []
        self._last_line = 0
        for row in self._rows():
            self.header = [h.strip().lstrip("\ufeff") for h in row.values]
            break

    def close(self) -> None:
        self._fp.close()

    @property
    def processed_bytes(self) -> int:
        with contextlib.suppress(OSError, ValueError):
            return self._fp.buffer.tell()
        return self.total_bytes

    def _rows(self) -> Iterator[SourceRow]:
        reader = self._reader
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFailed(f"line {self._last_line + 1}: unreadable CSV ({exc})") from None
            start = self._last_line + 1
            self._last_line = reader.line_num
            if values and any(values):
                yield SourceRow(start, values)

    def __iter__(self) -> Iterator[SourceRow]:
        return self._rows()


# --- columns -------------------------------------------------------------------------------
@dataclass
class ColumnPlan:
    """Which columns feed which field; everything else is ignored and said so."""

    header: list[str]
    email: int
    fields: dict[str, list[int]]  # stored field -> columns, first non-blank wins
    first_name: list[int]
    last_name: list[int]
    attributes: int | None
    required: tuple[str, ...]
    allowed: tuple[str, ...]
    ignored: dict[str, list[str]] = field(default_factory=dict)  # why -> column names


def not_allowed_reason() -> str:
    return f"not allowed by the policy's {PURPOSE} purpose"


def plan_columns(header: Sequence[str], column_map: dict[str, str] | None = None) -> ColumnPlan:
    """Map a header to the policy's fields.  Raises ImportFailed when the file is unusable."""
    policy = get_policy()
    fields = policy.fields_for(PURPOSE)
    allowed, required = fields.all, fields.required
    known = set(policy.all_fields)
    by_compact = {_compact(f): f for f in policy.all_fields}
    overrides: dict[str, str] = {}
    compact_header = {_compact(h): h for h in header}
    for column, target in (column_map or {}).items():
        name = column if column in header else compact_header.get(_compact(column))
        if name is None:
            raise ImportFailed(f"--map: the header has no column named {column!r}")
        target = target.strip()
        if target and target not in known | {FIRST_NAME, LAST_NAME, ATTRIBUTES}:
            raise ImportFailed(f"--map: {target!r} is not a field of the policy")
        if target and target not in (*allowed, FIRST_NAME, LAST_NAME, ATTRIBUTES):
            raise ImportFailed(f"--map: {target!r} is {not_allowed_reason()}")
        overrides[name] = target

    plan = ColumnPlan(
        header=list(header),
        email=-1,
        fields={},
        first_name=[],
        last_name=[],
        attributes=None,
        required=required,
        allowed=allowed,
    )

    def ignore(column: str, why: str) -> None:
        plan.ignored.setdefault(why, []).append(column or "(blank header)")

    for index, column in enumerate(header):
        if column in overrides:
            target = overrides[column]
            if target == IGNORE:
                ignore(column, "ignored by --map")
                continue
        else:
            compact = _compact(column)
            target = ALIASES.get(compact) or by_compact.get(compact) or ""
            if not target:
                ignore(column, "not a field tidings knows")
                continue
        if target in (FIRST_NAME, LAST_NAME):
            if "name" not in allowed:
                ignore(column, not_allowed_reason())
            elif target == FIRST_NAME:
                plan.first_name.append(index)
            else:
                plan.last_name.append(index)
        elif target == ATTRIBUTES:
            if plan.attributes is None:
                plan.attributes = index
            else:
                ignore(column, "a second attributes column")
        elif target not in allowed:
            ignore(column, not_allowed_reason())
        elif target == "email":
            if plan.email < 0:
                plan.email = index
            else:
                ignore(column, "a second email column")
        else:
            plan.fields.setdefault(target, []).append(index)

    if plan.email < 0:
        raise ImportFailed(
            "no email column: name one Email, E-mail or Email Address, "
            "or map it with --map 'Column=email'"
        )
    has_name = bool(plan.fields.get("name") or plan.first_name or plan.last_name)
    missing = [
        f
        for f in required
        if f != "email" and not (has_name if f == "name" else plan.fields.get(f))
    ]
    if missing and plan.attributes is None:
        raise ImportFailed(
            f"no column for {', '.join(missing)}, which the policy's {PURPOSE} purpose requires "
            f"(map one with --map 'Column={missing[0]}')"
        )
    return plan


# --- rows ----------------------------------------------------------------------------------
@dataclass(slots=True)
class GoodRow:
    line: int
    email: str
    key: str  # emails.email_key(email)
    values: tuple[str, ...]  # STORED_COLUMNS
    attributes: dict[str, Any] | None  # allowed fields that are not columns, or None
    digest: bytes = b""  # emails.email_hmac(email), raw: computed by the parser, off the writer
    cells: list[str] | None = None  # as read, for the report should the row turn out a duplicate


@dataclass(slots=True)
class BadRow:
    line: int
    reason: str
    detail: str
    values: list[str] | None  # None: the report gives the line only (suppressed rows)


def hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 by this key (emails.email_hmac's, raw), its padded keys hashed once (RFC 2104)
    rather than at every call as hmac.digest() does: 0.65 µs a row against 1.6 µs."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    inner_copy, outer_copy = inner.copy, outer.copy

    def digest(message: bytes) -> bytes:
        h = inner_copy()
        h.update(message)
        o = outer_copy()
        o.update(h.digest())
        return o.digest()

    return digest


class RowParser:
    """Turns source rows into GoodRow or BadRow, by the column plan and the policy.

    parse() is the import's hottest Python (once per row, ~5 µs): it strips every cell once,
    and checks lengths and NULs row-wide before looking field by field.
    """

    def __init__(self, plan: ColumnPlan):
        self.plan = plan
        self.max_lengths = {
            name: Contact._meta.get_field(name).max_length for name in STORED_COLUMNS
        }
        self.stored = [
            (position, name, plan.fields.get(name, []))
            for position, name in enumerate(STORED_COLUMNS)
        ]
        # The columns each stored field reads: one (the usual case), none or several.
        self.single = all(len(indexes) <= 1 for _, _, indexes in self.stored)
        self.column_of = [indexes[0] if indexes else -1 for _, _, indexes in self.stored]
        read = [plan.email, *plan.first_name, *plan.last_name, plan.attributes or 0]
        self.width = 1 + max(read + [i for indexes in plan.fields.values() for i in indexes])
        # No value shorter than every limit can be too long: most rows skip the field checks.
        self.shortest_limit = min(limit for limit in self.max_lengths.values() if limit)
        self.name_position = STORED_COLUMNS.index("name")
        self.combine_name = bool(plan.first_name or plan.last_name)
        self.name_pair = (
            (plan.first_name[0], plan.last_name[0])
            if len(plan.first_name) == len(plan.last_name) == 1
            else None
        )
        self.extra = [f for f in plan.fields if f not in STORED_COLUMNS]
        self.required_columns = [f for f in plan.required if f in STORED_COLUMNS]
        self.required_positions = [STORED_COLUMNS.index(f) for f in self.required_columns]
        self.required_extra = [f for f in plan.required if f not in Contact.COLUMN_FIELDS]
        self.ignored_keys: set[str] = set()
        self.allowed_by_compact = {_compact(f): f for f in plan.allowed}
        self.decode_errors_before = _decode_errors
        self.hmac = hmac_sha256(settings.TIDINGS_SUPPRESSION_KEY.encode("utf-8"))

    @staticmethod
    def _cell(row: list[str], index: int) -> str:
        value = row[index].strip() if index < len(row) else ""
        return _FORMULA_ESCAPE.sub("", value) if value[:1] == "'" else value

    def _cells(self, row: list[str]) -> list[str]:
        """Every cell as _cell() gives it, padded to the columns the plan reads."""
        cells = [v.strip() for v in row]
        if len(cells) < self.width:
            cells += [""] * (self.width - len(cells))
        if "\n'" in "\n" + "\n".join(cells):  # a spreadsheet's escape, rarely
            cells = [_FORMULA_ESCAPE.sub("", v) if v[:1] == "'" else v for v in cells]
        return cells

    def parse(self, source: SourceRow) -> GoodRow | BadRow:
        row = source.values
        line = source.line
        if _decode_errors != self.decode_errors_before and any("\ufffd" in v for v in row):
            return BadRow(line, "undecodable text", "bytes that are not valid text", row)
        cells = self._cells(row)
        plan = self.plan
        raw = cells[plan.email]
        if not raw:
            return BadRow(line, "missing email address", "the email address is blank", row)
        try:
            email = normalise_email(raw)
        except InvalidEmail as exc:
            return BadRow(line, "invalid email address", str(exc), row)

        if self.single:
            values = [cells[i] if i >= 0 else "" for i in self.column_of]
        else:
            values = [
                next((cells[i] for i in indexes if cells[i]), "") for _, _, indexes in self.stored
            ]
        if self.combine_name and not values[self.name_position]:
            if self.name_pair is not None:
                first, last = cells[self.name_pair[0]], cells[self.name_pair[1]]
            else:
                first = " ".join([v for v in (cells[i] for i in plan.first_name) if v])
                last = " ".join([v for v in (cells[i] for i in plan.last_name) if v])
            values[self.name_position] = f"{first} {last}".strip()

        attributes: dict[str, Any] | None = None
        if plan.attributes is not None:
            text = cells[plan.attributes]
            if text:
                try:
                    data = json.loads(text)
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    why = "attributes is not a JSON object"
                    return BadRow(line, "invalid attributes", why, row)
                attributes = self._attributes(data, values)
        for name in self.extra:
            for index in plan.fields[name]:
                value = cells[index]
                if value:
                    attributes = attributes or {}
                    attributes.setdefault(name, value)
                    break

        if max(map(len, values)) > self.shortest_limit or "\x00" in "".join(values):
            for position, name, _ in self.stored:
                value = values[position]
                if not value:
                    continue
                limit = self.max_lengths[name]
                if limit and len(value) > limit:
                    why = f"{name} is over {limit} characters"
                    return BadRow(line, f"{name} too long", why, row)
                if "\x00" in value:
                    why = f"{name} contains a NUL character"
                    return BadRow(line, "NUL character", why, row)
        for name, position in zip(self.required_columns, self.required_positions, strict=True):
            if not values[position]:
                return BadRow(line, f"missing {name}", f"missing required field {name}", row)
        for name in self.required_extra:
            if not (attributes or {}).get(name):
                return BadRow(line, f"missing {name}", f"missing required field {name}", row)
        key = email.casefold()
        return GoodRow(line, email, key, tuple(values), attributes, self.hmac(key.encode()), row)

    def _attributes(self, data: dict[str, Any], values: list[str]) -> dict[str, Any] | None:
        """listmonk's attributes: keys mapped like headers; allowed ones kept, others noted."""
        extra: dict[str, Any] = {}
        for key, value in data.items():
            compact = _compact(str(key))
            target = ALIASES.get(compact) or self.allowed_by_compact.get(compact, compact)
            if target not in self.plan.allowed or target == "email" or value in (None, ""):
                if target not in self.plan.allowed and len(self.ignored_keys) < 50:
                    self.ignored_keys.add(str(key)[:40])
                continue
            if target in STORED_COLUMNS:
                position = STORED_COLUMNS.index(target)
                if not values[position]:
                    values[position] = str(value).strip()
            else:
                extra[target] = value
        return extra or None


# --- batches ------------------------------------------------------------------------------
@dataclass(slots=True)
class Batch:
    rows: list[GoodRow]
    bad: list[BadRow]
    rows_read: int
    processed_bytes: int


def read_batches(source: CsvSource, parser: RowParser, size: int | None = None) -> Iterator[Batch]:
    """Parsed rows in batches of up to ``size`` good rows (the last one possibly empty)."""
    size = size or BATCH_ROWS
    parse = parser.parse
    rows: list[GoodRow] = []
    bad: list[BadRow] = []
    read = 0
    for source_row in source:
        read += 1
        result = parse(source_row)
        if type(result) is GoodRow:
            rows.append(result)
            if len(rows) >= size:
                yield Batch(rows, bad, read, source.processed_bytes)
                rows, bad, read = [], [], 0
        else:
            bad.append(result)  # type: ignore[arg-type]
    yield Batch(rows, bad, read, source.processed_bytes)


class Inline:
    """Prefetch's interface without the thread."""

    def __init__(self, iterator: Iterator[Any]):
        self._iterator = iterator

    def __iter__(self) -> Iterator[Any]:
        return self._iterator

    def close(self) -> None:
        pass


def _prefetch() -> bool:
    """Whether to parse in a thread ahead of the writer (see Prefetch): measured, it pays on
    PostgreSQL, whose work happens in another process, and costs on SQLite, whose work holds this
    process's GIL for a good part of each call."""
    return connection.vendor == "postgresql"


class Prefetch:
    """Runs an iterator in a thread, a few items ahead of the consumer.

    Parsing and validating (pure Python) then overlaps the database's work on the previous
    batch: both drivers release the GIL while they wait for the server (psycopg) or run a
    statement (sqlite3).  A queue of two batches keeps memory flat.  Exceptions are re-raised in
    the consumer; close() stops the thread.
    """

    _DONE = object()

    def __init__(self, iterator: Iterator[Any], ahead: int = 2):
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(iterator,), name="import-reader", daemon=True
        )
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, iterator: Iterator[Any]) -> None:
        try:
            for item in iterator:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
            return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# --- the bad-rows report -------------------------------------------------------------------
class Report:
    """The bad-rows CSV: personal data for the operator only (0600 file in imports_dir())."""

    def __init__(self, path: Path | None, header: Sequence[str]):
        self.path = path
        self.header = list(header)
        self._fp: Any = None
        self._writer: Any = None

    @property
    def written(self) -> bool:
        return self._writer is not None

    def write(self, bad: BadRow) -> None:
        if self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.path.touch(mode=0o600)
            self._fp = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.writer(self._fp)
            self._writer.writerow(["line", "reason", *self.header])
        cells = [safe_cell(v) for v in bad.values] if bad.values is not None else []
        self._writer.writerow([bad.line, bad.detail, *cells])

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()


# --- which rows we have seen ---------------------------------------------------------------
class LineIndex:
    """Contact id -> the file line that imported it, for "duplicate of line N" across batches.

    Pages of 1,024 unsigned ints, allocated only where ids fall: 4 bytes per id in the spans of
    ids the import touches (a fresh import's new contacts are one contiguous span), not a dict
    entry (~100 bytes) per row.
    """

    PAGE = 1024

    def __init__(self) -> None:
        self._pages: dict[int, array] = {}

    def get(self, contact_id: int) -> int:
        page = self._pages.get(contact_id // self.PAGE)
        return page[contact_id % self.PAGE] if page is not None else 0

    def set(self, contact_id: int, line: int) -> None:
        number = contact_id // self.PAGE
        page = self._pages.get(number)
        if page is None:
            page = self._pages[number] = array("I", bytes(self.PAGE * array("I").itemsize))
        page[contact_id % self.PAGE] = line


# --- writing -------------------------------------------------------------------------------
@dataclass(slots=True)
class Existing:
    id: int
    email: str
    values: tuple[str, ...]  # STORED_COLUMNS
    attributes: dict[str, Any]
    status: str | None  # of the subscription to the import's list


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model: Any) -> str:
    return _q(model._meta.db_table)


def _column(model: Any, name: str) -> str:
    return _q(model._meta.get_field(name).column)


class Writer:
    """Batched SQL for any backend (SQLite, PostgreSQL): multi-row INSERT ... ON CONFLICT DO
    NOTHING RETURNING, chunked to the backend's parameter limit.  Hand-written rather than
    bulk_create because the ORM's per-object work costs more than the whole insert (measured in
    bench/import_contacts.py), and bulk_create cannot return the ids of rows it inserted while
    ignoring conflicts, nor target the functional unique index on Lower(email)."""

    def __init__(self, imp: Import, mailing_list: MailingList, wording_id: int):
        self.imp = imp
        self.list = mailing_list
        self.wording_id = wording_id
        self.max_params = min(connection.features.max_query_params or 30000, 30000)
        self.empty_attributes = self._json({})

    def begin_batch(self, *, immediate: bool = False) -> None:
        """Per-transaction settings (see PostgresWriter); none here."""

    # adapters
    def _json(self, value: dict[str, Any]) -> Any:
        return Contact._meta.get_field("attributes").get_db_prep_save(value, connection)

    def _now(self) -> Any:
        return connection.ops.adapt_datetimefield_value(timezone.now())

    def _chunks(self, rows: Sequence[Any], width: int) -> Iterator[Sequence[Any]]:
        """Slices of at most the parameter limit, sized in powers of two.

        sqlite3 caches compiled statements by their text, and a 5,000-row VALUES statement
        compiles to megabytes: with one text per row count, the cache grew the process by
        120 MB.  Powers of two keep it to a dozen shapes per statement.
        """
        size = 1 << (max(1, self.max_params // max(width, 1)).bit_length() - 1)
        start = 0
        while start < len(rows):
            while size > len(rows) - start:
                size >>= 1
            yield rows[start : start + size]
            start += size

    def _values_sql(self, count: int, width: int) -> str:
        one = "(" + ", ".join(["%s"] * width) + ")"
        return ", ".join([one] * count)

    # reads
    def suppressed_hmacs(self, hmacs: Sequence[str]) -> set[str]:
        found: set[str] = set()
        sql = "SELECT {c} FROM {t} WHERE {c} IN ({p})"
        with connection.cursor() as cursor:
            for chunk in self._chunks(hmacs, 1):
                cursor.execute(
                    sql.format(
                        c=_column(Suppression, "email_hmac"),
                        t=_table(Suppression),
                        p=", ".join(["%s"] * len(chunk)),
                    ),
                    list(chunk),
                )
                found.update(h for (h,) in cursor.fetchall())
        return found

    def existing(self, emails: Sequence[str]) -> list[Existing]:
        """Contacts whose address equals one of these, as the unique index sees it (lower())."""
        c, s = _table(Contact), _table(Subscription)
        cols = ", ".join(f"c.{_column(Contact, f)}" for f in STORED_COLUMNS)
        sql = (
            f"SELECT c.{_column(Contact, 'id')}, c.{_column(Contact, 'email')}, {cols}, "
            f"c.{_column(Contact, 'attributes')}, s.{_column(Subscription, 'status')} "
            f"FROM {c} c LEFT JOIN {s} s ON s.{_column(Subscription, 'contact')} = "
            f"c.{_column(Contact, 'id')} AND s.{_column(Subscription, 'mailing_list')} = %s "
            f"WHERE LOWER(c.{_column(Contact, 'email')}) IN ({{p}})"
        )
        out = []
        with connection.cursor() as cursor:
            for chunk in self._chunks(emails, 1):
                cursor.execute(
                    sql.format(p=", ".join(["LOWER(%s)"] * len(chunk))), [self.list.pk, *chunk]
                )
                out.extend(self._existing(row) for row in cursor.fetchall())
        return out

    @staticmethod
    def _existing(row: Sequence[Any]) -> Existing:
        n = len(STORED_COLUMNS)
        attributes = row[2 + n]
        if isinstance(attributes, str):
            attributes = json.loads(attributes)
        return Existing(row[0], row[1], tuple(row[2 : 2 + n]), attributes or {}, row[3 + n])

    # writes
    def insert_contacts(self, rows: Sequence[GoodRow]) -> dict[str, int]:
        """Insert these contacts unless their address exists; returns {email: id} of new ones."""
        now = self._now()
        names = ["email", *STORED_COLUMNS, "attributes", "created_at", "updated_at"]
        cols = ", ".join(_column(Contact, n) for n in names)
        empty = self.empty_attributes
        params_rows = [
            (
                r.email,
                *r.values,
                empty if r.attributes is None else self._json(r.attributes),
                now,
                now,
            )
            for r in rows
        ]
        created: dict[str, int] = {}
        with connection.cursor() as cursor:
            for chunk in self._chunks(params_rows, len(names)):
                cursor.execute(
                    f"INSERT INTO {_table(Contact)} ({cols}) VALUES "
                    f"{self._values_sql(len(chunk), len(names))} ON CONFLICT DO NOTHING "
                    f"RETURNING {_column(Contact, 'id')}, {_column(Contact, 'email')}",
                    [p for row in chunk for p in row],
                )
                created.update((email, pk) for pk, email in cursor.fetchall())
        return created

    def create_contacts(self, rows: Sequence[GoodRow]) -> dict[str, int]:
        """Insert the contacts whose address is new, subscribe them and record their consent.

        Returns {email: id} of the contacts created; the others exist already.
        """
        created = self.insert_contacts(rows)
        if created:
            subscribed = self.subscribe(list(created.values()))
            self.consent_events(subscribed)
        return created

    def fill_contacts(self, fills: Sequence[tuple[int, dict[str, str], dict[str, Any] | None]]):
        """Fill blank fields of existing contacts (never overwriting: checked again in SQL)."""
        now = self._now()
        with connection.cursor() as cursor:
            for pk, values, attributes in fills:
                sets = [
                    f"{_q(c)} = CASE WHEN {_q(c)} = '' THEN %s ELSE {_q(c)} END"
                    for c in (Contact._meta.get_field(n).column for n in values)
                ]
                params: list[Any] = list(values.values())
                if attributes is not None:
                    sets.append(f"{_column(Contact, 'attributes')} = %s")
                    params.append(self._json(attributes))
                sets.append(f"{_column(Contact, 'updated_at')} = %s")
                cursor.execute(
                    f"UPDATE {_table(Contact)} SET {', '.join(sets)} "
                    f"WHERE {_column(Contact, 'id')} = %s",
                    [*params, now, pk],
                )

    def subscribe(self, contact_ids: Sequence[int]) -> list[int]:
        """Confirmed subscriptions for these contacts; returns the ids actually subscribed."""
        now = self._now()
        names = ["contact", "mailing_list", "status", "created_at", "confirmed_at", "updated_at"]
        cols = ", ".join(_column(Subscription, n) for n in names)
        confirmed = Subscription.Status.CONFIRMED.value
        rows = [(pk, self.list.pk, confirmed, now, now, now) for pk in contact_ids]
        done: list[int] = []
        with connection.cursor() as cursor:
            for chunk in self._chunks(rows, len(names)):
                cursor.execute(
                    f"INSERT INTO {_table(Subscription)} ({cols}) VALUES "
                    f"{self._values_sql(len(chunk), len(names))} ON CONFLICT DO NOTHING "
                    f"RETURNING {_column(Subscription, 'contact')}",
                    [p for row in chunk for p in row],
                )
                done.extend(pk for (pk,) in cursor.fetchall())
        return done

    def confirm(self, contact_ids: Sequence[int]) -> list[int]:
        """Confirm these contacts' pending subscriptions to the list; returns those confirmed."""
        now = self._now()
        done: list[int] = []
        contact = _column(Subscription, "contact")
        with connection.cursor() as cursor:
            for chunk in self._chunks(contact_ids, 1):
                cursor.execute(
                    f"UPDATE {_table(Subscription)} SET {_column(Subscription, 'status')} = %s, "
                    f"{_column(Subscription, 'confirmed_at')} = %s, "
                    f"{_column(Subscription, 'unsubscribed_at')} = NULL, "
                    f"{_column(Subscription, 'updated_at')} = %s "
                    f"WHERE {_column(Subscription, 'mailing_list')} = %s "
                    f"AND {_column(Subscription, 'status')} = %s "
                    f"AND {contact} IN ({', '.join(['%s'] * len(chunk))}) RETURNING {contact}",
                    [
                        Subscription.Status.CONFIRMED.value,
                        now,
                        now,
                        self.list.pk,
                        Subscription.Status.PENDING.value,
                        *chunk,
                    ],
                )
                done.extend(pk for (pk,) in cursor.fetchall())
        return done

    def consent_events(self, contact_ids: Sequence[int]) -> None:
        now = self._now()
        names = EVENT_COLUMNS
        cols = ", ".join(_column(ConsentEvent, n) for n in names)
        const = (
            PURPOSE,
            "email",
            self.list.pk,
            self.list.topic,
            ConsentEvent.Action.GRANTED.value,
            now,
            ConsentEvent.Source.IMPORT.value,
            f"import:{self.imp.pk}",
            self.wording_id,
        )
        rows = [(pk, *const) for pk in contact_ids]
        with connection.cursor() as cursor:
            for chunk in self._chunks(rows, len(names)):
                cursor.execute(
                    f"INSERT INTO {_table(ConsentEvent)} ({cols}) VALUES "
                    f"{self._values_sql(len(chunk), len(names))}",
                    [p for row in chunk for p in row],
                )


class PostgresWriter(Writer):
    """The same work, set-based.  A batch's new rows travel by COPY into a temporary staging
    table and become contacts, subscriptions and consent events in one statement, so their ids
    never leave the server; other values travel as arrays (one bound parameter each, through
    psycopg's server-side binding) and unnest() in the server.  Measured in
    bench/import_contacts.py and described in the module docstring."""

    STAGE = "tidings_import_stage"
    STAGE_COLUMNS = ("email", *STORED_COLUMNS, "attributes")

    def __init__(self, imp: Import, mailing_list: MailingList, wording_id: int):
        super().__init__(imp, mailing_list, wording_id)
        # Insert without ON CONFLICT while no row of the last batch was taken (see
        # create_contacts); a new writer starts hopeful.
        self.optimistic = True

    def _cursor(self) -> Any:
        import psycopg

        connection.ensure_connection()
        return psycopg.Cursor(connection.connection)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall() if cursor.description else []

    def begin_batch(self, *, immediate: bool = False) -> None:
        """Settings for the batch's transaction (SET LOCAL: they end with it).

        synchronous_commit off: the commit returns before its WAL reaches the disk.  A crash of
        the database server can then lose the last batches an import reported as committed; the
        import is idempotent, so running it again (the worker does after a crash) writes them
        and nothing twice.  ``immediate`` checks foreign keys at each statement's end rather
        than at commit, so the Import row updated last is locked for the commit only (parallel
        writers update that same row).
        """
        self._execute(
            "SELECT set_config('synchronous_commit', 'off', true), "
            "set_config('client_min_messages', 'warning', true)"
        )
        if immediate:
            self._execute("SET CONSTRAINTS ALL IMMEDIATE")

    def suppressed_hmacs(self, hmacs: Sequence[str]) -> set[str]:
        c = _column(Suppression, "email_hmac")
        sql = f"SELECT {c} FROM {_table(Suppression)} WHERE {c} = ANY(%s::text[])"
        return {h for (h,) in self._execute(sql, [list(hmacs)])}

    def existing(self, emails: Sequence[str]) -> list[Existing]:
        c, s = _table(Contact), _table(Subscription)
        cols = ", ".join(f"c.{_column(Contact, f)}" for f in STORED_COLUMNS)
        pk = _column(Contact, "id")
        sql = (
            f"SELECT c.{pk}, c.{_column(Contact, 'email')}, {cols}, "
            f"c.{_column(Contact, 'attributes')}, s.{_column(Subscription, 'status')} "
            f"FROM {c} c LEFT JOIN {s} s ON s.{_column(Subscription, 'contact')} = c.{pk} "
            f"AND s.{_column(Subscription, 'mailing_list')} = %s "
            # ARRAY(...) is computed once, so the planner probes the unique index once per
            # address; a join against unnest() was planned as a hash join over every contact
            # (100 ms a batch at 200,000 contacts, growing with the table).
            f"WHERE LOWER(c.{_column(Contact, 'email')}) = "
            f"ANY(ARRAY(SELECT LOWER(e) FROM unnest(%s::text[]) AS t(e)))"
        )
        return [self._existing(row) for row in self._execute(sql, [self.list.pk, list(emails)])]

    def _stage(self, rows: Sequence[GoodRow]) -> None:
        """COPY the rows into the connection's staging table (emptied at every commit).

        psycopg writes COPY rows in C (~0.8 µs a row, a hand-built COPY text saved nothing);
        dumping the values as arrays instead cost ~6 µs a row in Python, the largest single cost
        of the import's process.
        """
        self._execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.STAGE} "
            f"({', '.join(f'{name} text' for name in self.STAGE_COLUMNS)}) "
            f"ON COMMIT DELETE ROWS"
        )
        self._execute(f"TRUNCATE {self.STAGE}")  # a dry run stages every batch in one transaction
        dumps = json.dumps
        with (
            self._cursor() as cursor,
            cursor.copy(f"COPY {self.STAGE} ({', '.join(self.STAGE_COLUMNS)}) FROM STDIN") as copy,
        ):
            write = copy.write_row
            for r in rows:
                write((r.email, *r.values, None if r.attributes is None else dumps(r.attributes)))

    def _insert_contacts_sql(self, *, on_conflict: bool) -> str:
        names = ["email", *STORED_COLUMNS, "attributes", "created_at", "updated_at"]
        email = _column(Contact, "email")
        return (
            f"INSERT INTO {_table(Contact)} ({', '.join(_column(Contact, x) for x in names)}) "
            f"SELECT {', '.join(f's.{n}' for n in self.STAGE_COLUMNS[:-1])}, "
            f"COALESCE(s.attributes::jsonb, '{{}}'::jsonb), %(now)s, %(now)s "
            f"FROM {self.STAGE} s "
            # The unique index on lower(email) is the only arbiter: naming it spares a probe of
            # the primary key's index for every row.
            + (f"ON CONFLICT (LOWER({email})) DO NOTHING " if on_conflict else "")
            + f"RETURNING {_column(Contact, 'id')} AS id, {email} AS email"
        )

    def create_contacts(self, rows: Sequence[GoodRow]) -> dict[str, int]:
        """One statement: new contacts, their subscriptions and consent events.  A contact
        created by this transaction cannot have a subscription yet, so the subscription insert
        needs no conflict handling.

        While the last batch had no taken address (a new list, the usual import) the insert
        goes without ON CONFLICT, inside a savepoint: PostgreSQL's speculative insertion costs
        ~4 µs a row (measured: 35 -> 31 µs of server time a row).  Should an address be taken
        after all, the batch goes again with ON CONFLICT DO NOTHING, and so do the batches after
        it until one finds every address new.
        """
        if not rows:
            return {}
        import psycopg

        self._stage(rows)
        created: dict[str, int] | None = None
        if self.optimistic:
            try:
                with transaction.atomic():
                    created = self._create_staged(on_conflict=False)
            except psycopg.errors.UniqueViolation:
                created = None
        if created is None:
            created = self._create_staged(on_conflict=True)
        self.optimistic = len(created) == len(rows)
        return created

    def _create_staged(self, *, on_conflict: bool) -> dict[str, int]:
        sub = ["contact", "mailing_list", "status", "created_at", "confirmed_at", "updated_at"]
        sql = (
            f"WITH new AS ({self._insert_contacts_sql(on_conflict=on_conflict)}), "
            f"sub AS (INSERT INTO {_table(Subscription)} "
            f"({', '.join(_column(Subscription, n) for n in sub)}) "
            f"SELECT id, %(list)s, %(confirmed)s, %(now)s, %(now)s, %(now)s FROM new "
            f"RETURNING {_column(Subscription, 'contact')} AS id), "
            f"ev AS ({self._events_sql('SELECT id FROM sub')}) "
            f"SELECT id, email FROM new"
        )
        now = timezone.now()
        params = {
            "now": now,
            "list": self.list.pk,
            "confirmed": Subscription.Status.CONFIRMED.value,
            **self._events_params(now),
        }
        return {email: pk for pk, email in self._execute(sql, params)}

    def subscribe(self, contact_ids: Sequence[int]) -> list[int]:
        names = ["contact", "mailing_list", "status", "created_at", "confirmed_at", "updated_at"]
        sql = (
            f"INSERT INTO {_table(Subscription)} "
            f"({', '.join(_column(Subscription, n) for n in names)}) "
            f"SELECT unnest(%(ids)s::bigint[]), %(list)s, %(confirmed)s, %(now)s, %(now)s, "
            f"%(now)s ON CONFLICT DO NOTHING RETURNING {_column(Subscription, 'contact')}"
        )
        params = {
            "ids": list(contact_ids),
            "list": self.list.pk,
            "confirmed": Subscription.Status.CONFIRMED.value,
            "now": timezone.now(),
        }
        return [pk for (pk,) in self._execute(sql, params)]

    def confirm(self, contact_ids: Sequence[int]) -> list[int]:
        now = timezone.now()
        contact = _column(Subscription, "contact")
        status = _column(Subscription, "status")
        sql = (
            f"UPDATE {_table(Subscription)} SET {status} = %s, "
            f"{_column(Subscription, 'confirmed_at')} = %s, "
            f"{_column(Subscription, 'unsubscribed_at')} = NULL, "
            f"{_column(Subscription, 'updated_at')} = %s "
            f"WHERE {_column(Subscription, 'mailing_list')} = %s AND {status} = %s "
            f"AND {contact} = ANY(%s::bigint[]) RETURNING {contact}"
        )
        params = [
            Subscription.Status.CONFIRMED.value,
            now,
            now,
            self.list.pk,
            Subscription.Status.PENDING.value,
            list(contact_ids),
        ]
        return [pk for (pk,) in self._execute(sql, params)]

    def _events_sql(self, ids_sql: str) -> str:
        names = EVENT_COLUMNS
        values = ", ".join(f"%(ev_{n})s" for n in names[1:])
        return (
            f"INSERT INTO {_table(ConsentEvent)} "
            f"({', '.join(_column(ConsentEvent, n) for n in names)}) "
            f"SELECT ids.id, {values} FROM ({ids_sql}) AS ids(id)"
        )

    def _events_params(self, now: Any) -> dict[str, Any]:
        return {
            "ev_purpose": PURPOSE,
            "ev_channel": "email",
            "ev_mailing_list": self.list.pk,
            "ev_topic": self.list.topic,
            "ev_action": ConsentEvent.Action.GRANTED.value,
            "ev_at": now,
            "ev_source": ConsentEvent.Source.IMPORT.value,
            "ev_source_ref": f"import:{self.imp.pk}",
            "ev_wording": self.wording_id,
        }

    def consent_events(self, contact_ids: Sequence[int]) -> None:
        sql = self._events_sql("SELECT unnest(%(ids)s::bigint[])")
        self._execute(sql, {**self._events_params(timezone.now()), "ids": list(contact_ids)})

    def add_progress(self, tally: Tally, processed_bytes: int) -> None:
        """Add a part's counts to the Import row (parallel writers: each adds its own)."""
        t = _table(Import)
        sets = [f"{_column(Import, n)} = {_column(Import, n)} + %({n})s" for n in COUNTERS]
        done = _column(Import, "processed_bytes")
        sets.append(
            f"{done} = GREATEST({done}, LEAST(%(bytes)s, {_column(Import, 'total_bytes')}))"
        )
        params: dict[str, Any] = {**tally.counts, "bytes": processed_bytes, "pk": self.imp.pk}
        if tally.reasons:
            # Merge {reason: {count, first_line}}: counts add up, the first line is the least.
            reasons = _column(Import, "bad_reasons")
            sets.append(
                f"{reasons} = (SELECT COALESCE(jsonb_object_agg(k, jsonb_build_object("
                "'count', COALESCE((o.v->>'count')::bigint, 0) "
                "+ COALESCE((n.v->>'count')::bigint, 0), "
                "'first_line', LEAST((o.v->>'first_line')::bigint, "
                "(n.v->>'first_line')::bigint))), '{}'::jsonb) "
                f"FROM jsonb_each({reasons}) AS o(k, v) "
                "FULL JOIN jsonb_each(%(reasons)s::jsonb) AS n(k, v) USING (k))"
            )
            params["reasons"] = json.dumps(tally.reasons)
        self._execute(
            f"UPDATE {t} SET {', '.join(sets)} WHERE {_column(Import, 'id')} = %(pk)s", params
        )


def writer_for(imp: Import, mailing_list: MailingList, wording_id: int, fast: bool) -> Writer:
    """The PostgreSQL writer where it can be used (and ``fast``), else the generic one."""
    if fast and connection.vendor == "postgresql":
        return PostgresWriter(imp, mailing_list, wording_id)
    return Writer(imp, mailing_list, wording_id)


# --- the run -------------------------------------------------------------------------------
COUNTERS = (
    "rows_read",
    "created",
    "updated",
    "unchanged",
    "subscribed",
    "skipped_suppressed",
    "skipped_unsubscribed",
    "duplicates",
    "bad_rows",
)

Progress = Callable[[Import], None]


def percent_done(imp: Import) -> int:
    """How much of its file the import has read, 0 to 100 (without a size: 100 once finished)."""
    if imp.total_bytes:
        return min(100, round(100 * imp.processed_bytes / imp.total_bytes))
    return 100 if imp.status == Import.Status.FINISHED else 0


SUBSCRIBABLE = (None, Subscription.Status.PENDING, Subscription.Status.CONFIRMED)


class SuppressionList:
    """Which rows' addresses are suppressed (Suppression.email_hmac of their email_key).

    Up to ``CACHE_LIMIT`` entries are kept in memory as raw digests (~100 bytes each), with
    entries added since the last batch fetched by primary key; a longer list is asked per batch.
    Measured: asking PostgreSQL per batch cost ~4 µs a row, more than the HMAC itself.
    """

    CACHE_LIMIT = 250_000

    def __init__(self, writer: Writer):
        self.writer = writer
        self.last_pk = 0
        self.cached: set[bytes] | None = None
        if Suppression.objects.count() <= self.CACHE_LIMIT:
            self.cached = set()
            self._refresh()

    def _refresh(self) -> None:
        assert self.cached is not None
        new = Suppression.objects.filter(pk__gt=self.last_pk).order_by("pk")
        for pk, hex_digest in new.values_list("pk", "email_hmac").iterator(chunk_size=10_000):
            self.cached.add(bytes.fromhex(hex_digest))
            self.last_pk = pk
        if len(self.cached) > self.CACHE_LIMIT:
            self.cached = None

    def matching(self, rows: Sequence[GoodRow]) -> set[str]:
        """The email_keys among these rows that are suppressed."""
        if self.cached is not None:
            self._refresh()
        if self.cached is not None:
            cached = self.cached
            return {r.key for r in rows if r.digest in cached}
        found = self.writer.suppressed_hmacs([r.digest.hex() for r in rows])
        return {r.key for r in rows if r.digest.hex() in found}


@dataclass
class Tally:
    """What one batch, or one writer's part of it, did: counts, bad-row reasons, report rows."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    report: list[BadRow] = field(default_factory=list)

    def bad(self, row: BadRow, counter: str = "bad_rows") -> None:
        self.counts[counter] += 1
        if counter == "bad_rows":
            entry = self.reasons.setdefault(row.reason, {"count": 0, "first_line": row.line})
            entry["count"] += 1
        self.report.append(row)


class Lane:
    """Writes rows whose addresses are its own: all of them, or one writer's share.

    Remembers which file line each contact it wrote came from, for "duplicate of line N" across
    batches: a later row for the same address always comes to the same lane, after the earlier.
    """

    def __init__(self, imp: Import, writer: Writer):
        self.imp = imp
        self.writer = writer
        self.seen = LineIndex()
        self.lookup_first = False

    def write(self, rows: list[GoodRow], tally: Tally) -> None:
        """Rows already screened (first of their address in the batch, not suppressed)."""
        writer, counts = self.writer, tally.counts
        # New addresses: contact, confirmed subscription and consent event, in one go.  When
        # most addresses of the last batch were taken (a re-run, an update of a known list),
        # looking them up first is cheaper than letting every insert conflict (measured: an
        # insert that conflicts costs PostgreSQL about as much as one that does not).
        found: dict[str, Existing] | None = None
        if self.lookup_first and rows:
            found = self._existing_by_key(rows)
            created = writer.create_contacts([r for r in rows if r.key not in found])
        else:
            created = writer.create_contacts(rows)
        counts["created"] += len(created)
        counts["subscribed"] += len(created)
        taken = []
        seen_set = self.seen.set
        for row in rows:
            pk = created.get(row.email)
            if pk is None:
                taken.append(row)
            else:
                seen_set(pk, row.line)
        self.lookup_first = len(taken) > len(rows) // 2
        if taken:
            if found is None or any(r.key not in found for r in taken):
                # Looked up before the insert, yet taken since: another writer was quicker.
                found = self._existing_by_key(taken)
            self._write_existing(taken, found, tally)

    def _existing_by_key(self, rows: Sequence[GoodRow]) -> dict[str, Existing]:
        return {e.email.casefold(): e for e in self.writer.existing([r.email for r in rows])}

    def _write_existing(
        self, rows: list[GoodRow], by_key: dict[str, Existing], tally: Tally
    ) -> None:
        """Rows whose address is taken: by a contact from before, or by an earlier row."""
        writer, counts = self.writer, tally.counts
        fills = []
        subscribe: list[int] = []
        confirm: list[int] = []
        outcome: dict[int, str] = {}  # contact id -> updated/unchanged
        for row in rows:
            found = by_key.get(row.key)
            if found is None:
                # The unique index (Lower(email), as the database lowers) and email_key
                # (Python's casefold) disagree on this address: not ours to guess.
                why = "conflicts with an existing contact's address"
                tally.bad(BadRow(row.line, "address conflict", why, row.cells))
                continue
            line = self.seen.get(found.id)
            if line:
                tally.bad(_duplicate(row, line), "duplicates")
                continue
            self.seen.set(found.id, row.line)
            if found.status not in SUBSCRIBABLE:
                counts["skipped_unsubscribed"] += 1  # they left: an import never overrides that
                continue
            fill = self._fill(found, row)
            if fill is not None:
                fills.append(fill)
            outcome[found.id] = "updated" if fill is not None else "unchanged"
            if found.status is None:
                subscribe.append(found.id)
            elif found.status == Subscription.Status.PENDING:
                confirm.append(found.id)
        if fills:
            writer.fill_contacts(fills)
        granted = writer.subscribe(subscribe) if subscribe else []
        if confirm:
            granted += writer.confirm(confirm)
        if granted:
            writer.consent_events(granted)
        for pk in granted:
            outcome[pk] = "updated"
        for result in outcome.values():
            counts[result] += 1
        counts["subscribed"] += len(granted)

    @staticmethod
    def _fill(found: Existing, row: GoodRow) -> tuple[int, dict[str, str], Any] | None:
        values = {
            name: new
            for name, old, new in zip(STORED_COLUMNS, found.values, row.values, strict=True)
            if new and not old
        }
        attributes = None
        if row.attributes:
            new_keys = {k: v for k, v in row.attributes.items() if k not in found.attributes}
            if new_keys:
                attributes = {**found.attributes, **new_keys}
        if not values and attributes is None:
            return None
        return found.id, values, attributes


def _duplicate(row: GoodRow, line: int) -> BadRow:
    return BadRow(row.line, "duplicate", f"duplicate of line {line}", row.cells)


class Run:
    """One import's state while it runs: counters, report, the rows' screening, the lane."""

    def __init__(self, imp: Import, source: CsvSource, plan: ColumnPlan, writer: Writer):
        self.imp = imp
        self.source = source
        self.plan = plan
        self.parser = RowParser(plan)
        self.writer = writer
        self.lane = Lane(imp, writer)
        self.report = Report(None if imp.dry_run else imp.report_path, source.header)
        self.reasons: dict[str, dict[str, int]] = dict(imp.bad_reasons or {})
        self.suppressed_domains = {
            d.lower() for d in SuppressedDomain.objects.values_list("domain", flat=True)
        }
        self.suppressions = SuppressionList(writer)
        self.tally = Tally()  # the batch being written

    def write_batch(self, batch: Batch) -> None:
        """Write one batch (the caller holds its transaction) and count what happened."""
        self.tally = self.start(batch)
        self.writer.begin_batch()
        self._write_rows(batch.rows)
        self.finish(self.tally)

    def _write_rows(self, batch: list[GoodRow]) -> None:
        self.lane.write(self.screen(batch, self.tally), self.tally)

    def start(self, batch: Batch) -> Tally:
        """A batch's tally, holding what the parser found: rows read and bad rows."""
        tally = Tally()
        tally.counts["rows_read"] = batch.rows_read
        for row in batch.bad:
            tally.bad(row)
        return tally

    def screen(self, batch: list[GoodRow], tally: Tally) -> list[GoodRow]:
        """The rows to write: the first of each address in the batch, none suppressed."""
        first: dict[str, GoodRow] = {}
        rows: list[GoodRow] = []
        for row in batch:
            earlier = first.setdefault(row.key, row)
            if earlier is row:
                rows.append(row)
            else:
                tally.bad(_duplicate(row, earlier.line), "duplicates")

        # Suppressed addresses and domains: skipped, reported by line number only.
        suppressed = self.suppressions.matching(rows)
        domains = self.suppressed_domains
        if suppressed or domains:
            kept = []
            for row in rows:
                if row.key in suppressed or (domains and email_domain(row.email) in domains):
                    tally.bad(
                        BadRow(row.line, "suppressed", "suppressed: may not be mailed", None),
                        "skipped_suppressed",
                    )
                else:
                    kept.append(row)
            rows = kept
        return rows

    def count(self, tally: Tally) -> None:
        """Add a committed tally to the import's counts (in memory)."""
        imp = self.imp
        for name, value in tally.counts.items():
            if value:
                setattr(imp, name, getattr(imp, name) + value)
        for reason, delta in tally.reasons.items():
            entry = self.reasons.setdefault(reason, {"count": 0, "first_line": delta["first_line"]})
            entry["count"] += delta["count"]
            entry["first_line"] = min(entry["first_line"], delta["first_line"])

    def finish(self, tally: Tally) -> None:
        self.count(tally)
        tally.report.sort(key=lambda r: r.line)
        for row in tally.report:
            self.report.write(row)


# --- writing in parallel -------------------------------------------------------------------
# How many connections write at once (PostgreSQL only).  One connection's server process is the
# import's bottleneck: ~31 µs a row (indexes, foreign-key checks, WAL) against the importing
# process's ~12 µs; two share it out.  Three cost the importing process ~2 µs a row more (GIL)
# and were no faster on this 2-core machine.
WRITERS = 2
# Files smaller than this are written by one connection: two threads are not worth starting.
PARALLEL_MIN_BYTES = 8 << 20


def lane_of(row: GoodRow, lanes: int) -> int:
    """The writer a row goes to: the same for every address the unique index takes for the
    same, so that a later duplicate always meets the earlier row's contact in its own lane.

    PostgreSQL's lower() and email_key (casefold) disagree on a few non-ASCII letters (lower()
    makes U+0130 an ASCII "i"), so non-ASCII keys are reduced to their ASCII letters first.
    """
    key = row.key
    if not key.isascii():
        key = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode().lower()
    return hash(key) % lanes


@dataclass(slots=True)
class Part:
    """One writer's share of a batch; the first part also carries what the parser found."""

    number: int  # of the batch
    parts: int  # how many parts the batch has
    rows: list[GoodRow]
    tally: Tally
    processed_bytes: int


class LaneThread:
    """A Lane in a thread of its own, with its own database connection.

    Each part is one transaction, which also adds the part's counts to the Import row, so the
    row's counts are always the sum of what is committed.
    """

    def __init__(self, imp: Import, writer: Writer, done: queue.Queue[Part]):
        self.lane = Lane(imp, writer)
        self.inbox: queue.Queue[Part | None] = queue.Queue(maxsize=1)
        self.done = done
        self.error: BaseException | None = None
        self.finished = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from django.db import connections

        writer = self.lane.writer
        assert isinstance(writer, PostgresWriter)
        try:
            while not self.stop.is_set():
                try:
                    part = self.inbox.get(timeout=0.1)
                except queue.Empty:
                    continue
                if part is None:
                    self.finished = True
                    return
                with transaction.atomic():
                    writer.begin_batch(immediate=True)
                    self.lane.write(part.rows, part.tally)
                    writer.add_progress(part.tally, part.processed_bytes)
                part.rows = []  # memory: the rows are written
                self.done.put(part)
        except BaseException as exc:  # handed to the import's thread, which re-raises it
            self.error = exc
        finally:
            connections.close_all()

    def put(self, part: Part | None) -> None:
        while self.thread.is_alive():
            try:
                self.inbox.put(part, timeout=0.1)
                return
            except queue.Full:
                continue
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise self.error
        if not (self.thread.is_alive() or self.finished or self.stop.is_set()):
            raise RuntimeError("an import writer stopped")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


class ParallelWrite:
    """Batches split by address between WRITERS lanes; counts and report kept in file order.

    The parser and the screening (duplicates within a batch, suppressions) run in the import's
    own thread, which then hands each lane its share and, as parts come back committed, adds
    their counts and writes the report rows of each batch once all its parts are done.
    """

    def __init__(self, run: Run, writers: list[Writer], progress: Progress | None):
        self.run = run
        self.progress = progress
        self.done: queue.Queue[Part] = queue.Queue()
        self.lanes = [LaneThread(run.imp, w, self.done) for w in writers]
        self.waiting: dict[int, list[Part]] = {}
        self.next_number = 0  # the first batch whose report is not written yet
        self.sent = 0

    def write(self, batches: Iterable[Batch]) -> None:
        lanes = len(self.lanes)
        try:
            for number, batch in enumerate(batches):
                tally = self.run.start(batch)
                shares: list[list[GoodRow]] = [[] for _ in range(lanes)]
                for row in self.run.screen(batch.rows, tally):
                    shares[lane_of(row, lanes)].append(row)
                # The first part carries the parser's tally even when it has no rows of its own.
                used = [i for i in range(lanes) if i == 0 or shares[i]]
                for i in used:
                    part_tally = tally if i == 0 else Tally()
                    part = Part(number, len(used), shares[i], part_tally, batch.processed_bytes)
                    self.lanes[i].put(part)
                    self.sent += 1
                self._collect(block=False)
        except ImportFailed:
            self._finish()  # what was read before the unreadable line is written, as in turn
            raise
        self._finish()

    def _finish(self) -> None:
        """Wait for every part sent, then end the lanes."""
        while self.sent:
            self._collect(block=True)
        for lane in self.lanes:
            lane.put(None)
        for lane in self.lanes:
            lane.thread.join()
            lane.check()

    def _collect(self, *, block: bool) -> None:
        """Count the parts the lanes are done with (waiting for one if ``block``)."""
        while self.sent:
            try:
                part = self.done.get(timeout=0.1) if block else self.done.get_nowait()
            except queue.Empty:
                for lane in self.lanes:
                    lane.check()
                if block:
                    continue
                return
            self._count(part)
            if self.progress is not None:
                self.progress(self.run.imp)
            block = False

    def _count(self, part: Part) -> None:
        self.sent -= 1
        self.run.count(part.tally)
        imp = self.run.imp
        imp.processed_bytes = max(imp.processed_bytes, min(part.processed_bytes, imp.total_bytes))
        imp.bad_reasons = self.run.reasons
        self.waiting.setdefault(part.number, []).append(part)
        self._write_reports()

    def _write_reports(self) -> None:
        while True:
            parts = self.waiting.get(self.next_number)
            if not parts or len(parts) < parts[0].parts:
                return
            del self.waiting[self.next_number]
            rows = sorted((r for p in parts for r in p.tally.report), key=lambda r: r.line)
            for row in rows:
                self.run.report.write(row)
            self.next_number += 1

    def close(self) -> None:
        """Stop the lanes (each finishes the part it is writing) and count what they wrote."""
        for lane in self.lanes:
            lane.close()
        while self.sent:
            try:
                self._count(self.done.get_nowait())
            except queue.Empty:
                return


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Python's cyclic garbage collector, run 50 times less often for the import's duration.

    An import allocates millions of small objects (cells, rows) that reference counting frees;
    at the default threshold (2,000 allocations) the collector ran every few rows, and cost
    ~1.3 µs a row (measured parsing the 1M-row file: 7.8 -> 6.5 µs a row).  Process-wide: the
    threshold is put back afterwards.
    """
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], 100_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@contextlib.contextmanager
def _bulk_session() -> Iterator[None]:
    """Connection settings for the import's duration.  SQLite: a 64 MB page cache instead of
    2 MB, so the indexes' pages a batch touches stay in memory (measured at 300,000 rows: 12.8 s
    -> 11.7 s; it counts in the process's RSS)."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        (previous,) = cursor.fetchone()
        cursor.execute("PRAGMA cache_size = -65536")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(previous)}")


def _parallel(imp: Import, writer: Writer) -> bool:
    """Whether to write with WRITERS connections: PostgreSQL's writer, a file big enough, and
    no transaction around the import (a dry run is one; the writers could not see into it)."""
    return (
        isinstance(writer, PostgresWriter)
        and not imp.dry_run
        and not connection.in_atomic_block
        and imp.total_bytes >= PARALLEL_MIN_BYTES
    )


def _write_in_turn(run: Run, batches: Iterator[Batch], progress: Progress | None) -> None:
    """One connection: each batch in a transaction with the Import row's progress."""
    imp = run.imp
    reader = Prefetch(batches, ahead=1) if _prefetch() else Inline(batches)
    try:
        with _bulk_session():
            for batch in reader:
                with transaction.atomic():
                    run.write_batch(batch)
                    _save_progress(imp, batch, run)
                if progress is not None:
                    progress(imp)
    finally:
        reader.close()


def _save_progress(imp: Import, batch: Batch, run: Run) -> None:
    imp.processed_bytes = min(batch.processed_bytes, imp.total_bytes)
    imp.bad_reasons = run.reasons
    if not imp.dry_run:
        fields = [*COUNTERS, "processed_bytes", "bad_reasons"]
        Import.objects.filter(pk=imp.pk).update(**{f: getattr(imp, f) for f in fields})


def run_import(
    imp: Import,
    path: Path | None = None,
    *,
    progress: Progress | None = None,
    fast: bool = True,
    actor_label: str = "",
) -> Import:
    """Run an import to the end and return it finished, or raise ImportFailed (marked failed).

    ``path`` is the file to read, by default the import's stored upload.  ``fast`` allows the
    PostgreSQL writer; the generic writer does the same work with portable SQL.  ``progress`` is
    called with the import after every batch.  A dry run leaves no trace in the database.
    """
    path = path or imp.stored_path
    if path is None or not path.is_file():
        raise _fail(imp, "the file to import is missing")
    if imp.mailing_list is None:
        raise _fail(imp, "the list to import into no longer exists")
    started = time.monotonic()
    fmt = detect_format(path)
    source = CsvSource(path, fmt)
    try:
        plan = plan_columns(source.header, imp.column_map)
    except ImportFailed as exc:
        source.close()
        raise _fail(imp, str(exc)) from None
    for name in COUNTERS:  # a re-run (after a worker died mid-way) counts afresh
        setattr(imp, name, 0)
    imp.bad_reasons, imp.error = {}, ""
    imp.encoding, imp.delimiter = fmt.encoding, fmt.delimiter
    imp.ignored_columns = plan.ignored
    imp.total_bytes = source.total_bytes
    imp.status = Import.Status.RUNNING
    imp.started_at = timezone.now()
    if not imp.dry_run:
        imp.report_file = imp.report_file or f"{imp.pk}-{secrets.token_hex(8)}-bad-rows.csv"
        imp.save(
            update_fields=[
                *COUNTERS,
                "bad_reasons",
                "error",
                "encoding",
                "delimiter",
                "ignored_columns",
                "total_bytes",
                "status",
                "started_at",
                "report_file",
            ]
        )

    run = None
    try:
        with transaction.atomic() if imp.dry_run else contextlib.nullcontext():
            consent = wording(imp.consent_source)
            writer = writer_for(imp, imp.mailing_list, consent.pk, fast)
            run = Run(imp, source, plan, writer)
            batches = read_batches(source, run.parser)
            with _fewer_collections():
                if _parallel(imp, writer):
                    lanes = [
                        writer_for(imp, imp.mailing_list, consent.pk, fast) for _ in range(WRITERS)
                    ]
                    parallel = ParallelWrite(run, lanes, progress)
                    try:
                        parallel.write(batches)
                    finally:
                        parallel.close()
                else:
                    _write_in_turn(run, batches, progress)
            if imp.dry_run:
                transaction.set_rollback(True)
    except ImportFailed as exc:
        raise _fail(imp, str(exc), run) from None
    except KeyboardInterrupt:
        _fail(imp, "interrupted", run)
        raise
    except Exception as exc:
        # The database's message may quote a value from the file: only the class goes out.
        log.error("import %s failed: %s", imp.pk, type(exc).__name__)
        raise _fail(imp, f"internal error ({type(exc).__name__})", run) from None
    finally:
        source.close()
        if run is not None:
            run.report.close()

    keys = sorted(run.parser.ignored_keys)
    if keys:
        imp.ignored_columns.setdefault(
            f"attributes keys not allowed by the policy's {PURPOSE} purpose or unknown", keys
        )
    imp.status = Import.Status.FINISHED
    imp.finished_at = timezone.now()
    imp.processed_bytes = imp.total_bytes
    if not run.report.written:
        imp.report_file = ""
    if not imp.dry_run:
        imp.save(
            update_fields=[
                "status",
                "finished_at",
                "processed_bytes",
                "report_file",
                "ignored_columns",
                "bad_reasons",
                *COUNTERS,
            ]
        )
        audit(
            "import.finished",
            actor=imp.operator,
            actor_label=actor_label,
            obj=imp,
            mailing_list=imp.mailing_list_id,
            seconds=round(time.monotonic() - started, 1),
            **{name: getattr(imp, name) for name in COUNTERS},
        )
    log.info("import %s finished: %s rows read", imp.pk, imp.rows_read)
    return imp


def _fail(imp: Import, message: str, run: Run | None = None) -> ImportFailed:
    imp.status = Import.Status.FAILED
    imp.error = message[:500]
    imp.finished_at = timezone.now()
    if run is not None:
        imp.bad_reasons = run.reasons
        if not run.report.written:
            imp.report_file = ""
    if not imp.dry_run and imp.pk is not None:
        imp.save(update_fields=["status", "error", "finished_at", "bad_reasons", "report_file"])
        audit(
            "import.failed",
            actor=imp.operator,
            obj=imp,
            **{name: getattr(imp, name) for name in COUNTERS},
        )
    log.info("import %s failed: %s", imp.pk, message)
    return ImportFailed(message)


def summary(imp: Import, seconds: float | None = None) -> str:
    """One line for people: the counts, the file's format, where the report is."""
    name = imp.mailing_list.name if imp.mailing_list else "(deleted list)"
    verb = "Dry run: would import" if imp.dry_run else "Imported"
    speed = ""
    if seconds:
        speed = f" in {seconds:.1f} s ({imp.rows_read / seconds:,.0f} rows/s)"
    parts = [
        f"{imp.created:,} created",
        f"{imp.updated:,} updated",
        f"{imp.unchanged:,} unchanged",
        f"{imp.subscribed:,} subscribed",
    ]
    if imp.skipped_suppressed:
        parts.append(f"{imp.skipped_suppressed:,} suppressed")
    if imp.skipped_unsubscribed:
        parts.append(f"{imp.skipped_unsubscribed:,} who had left the list")
    if imp.duplicates:
        parts.append(f"{imp.duplicates:,} duplicates")
    bad = f"{imp.bad_rows:,} bad rows"
    if imp.bad_reasons:
        bad += (
            " ("
            + ", ".join(
                f"{reason} {entry['count']:,}, first at line {entry['first_line']}"
                for reason, entry in sorted(imp.bad_reasons.items(), key=lambda kv: -kv[1]["count"])
            )
            + ")"
        )
    parts.append(bad)
    delimiter = {"\t": "tab"}.get(imp.delimiter, repr(imp.delimiter))
    return (
        f"{verb} {imp.rows_read:,} rows into {name!r}{speed}: {', '.join(parts)}; "
        f"{imp.encoding}, {delimiter}-separated."
    )


def ignored_text(imp: Import) -> str:
    """ "ignored columns: x, y — why; z — why", or "" when every column was used."""
    if not imp.ignored_columns:
        return ""
    return "ignored columns: " + "; ".join(
        f"{', '.join(columns)} — {why}" for why, columns in imp.ignored_columns.items()
    )


# --- starting one --------------------------------------------------------------------------
def default_consent_source(filename: str) -> str:
    return (
        f"Imported from {filename or 'a file'}: the operator who imported it confirmed that "
        "these people had consented to receive this list."
    )


def create_import(
    *,
    mailing_list: MailingList,
    consent_source: str = "",
    operator: Any = None,
    original_filename: str = "",
    column_map: dict[str, str] | None = None,
    dry_run: bool = False,
    upload: Iterable[bytes] | None = None,
) -> Import:
    """An Import record (queued); ``upload`` chunks are stored in imports_dir() (0600).

    A dry run is not saved (it leaves no trace), so it takes no upload: run_import() it on a path.
    """
    if dry_run and upload is not None:
        raise ValueError("a dry run reads its file in place: pass the path to run_import()")
    user = operator if getattr(operator, "is_authenticated", False) else None
    imp = Import(
        mailing_list=mailing_list,
        consent_source=consent_source.strip() or default_consent_source(original_filename),
        operator=user,
        original_filename=original_filename[:255],
        column_map=column_map or {},
        dry_run=dry_run,
    )
    if upload is not None:
        directory = imports_dir()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        imp.stored_file = f"{secrets.token_hex(16)}.csv"
        path = directory / imp.stored_file
        path.touch(mode=0o600)
        with path.open("wb") as fp:
            for chunk in upload:
                fp.write(chunk)
        imp.total_bytes = path.stat().st_size
    if not dry_run:
        imp.save()
    return imp


def start_import(**kwargs: Any) -> Import:
    """create_import() with an upload, then queue the background task once it is committed."""
    from .tasks import import_contacts

    imp = create_import(**kwargs)
    transaction.on_commit(lambda: import_contacts.enqueue(imp.pk))
    return imp
