"""Rows: each source row becomes a GoodRow (to write) or a BadRow (to report), and what a
batch of them did is counted in a Tally."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.utils import timezone

from tidings.lib.text import has_breaks, one_line, strip_format_characters

from ..emails import InvalidEmail, normalise_email
from ..models import Contact
from .columns import ALIASES, STORED_COLUMNS, ColumnPlan, compact
from .exporters import CONFIRM_IP, CONFIRM_TIME, CONSENT_USES, OPTIN_IP, OPTIN_TIME
from .proof import (
    FUTURE_SLACK,
    UNREADABLE,
    date_kind,
    ip_kind,
    left_reason,
    parse_ip,
    parse_moment,
)
from .source import CsvSource, SourceRow
from .workbook import XlsxSource

# Fields that hold one line of text: a line break in them is either a typing slip or the sign
# that a quote was not closed (then followed by the next rows, delimiters and all).
ONE_LINE_FIELDS = ("email", "name", "phone", "company", "job_title")

# What a spreadsheet-safe cell (policy.ropa.safe_cell, used for the report) adds in front of a
# value; stripped on the way in so a corrected report can be imported again unchanged.
_FORMULA_ESCAPE = re.compile(r"^'(?=[=+\-@\t\r])")


@dataclass(slots=True)
class GoodRow:
    line: int
    email: str
    key: str  # emails.email_key(email)
    values: tuple[str, ...]  # STORED_COLUMNS
    attributes: dict[str, Any] | None  # allowed fields that are not columns, or None
    digest: bytes = b""  # emails.email_hmac(email), raw: computed by the parser, off the writer
    # The cells of the columns the import reads, as read, for the report should the row turn out
    # a duplicate (report_cells() spreads them over the header again).  Only those: a 25-column
    # export's row kept whole cost ~1.8 KB, and a batch holds 20,000 rows.
    cells: Sequence[str] | None = None
    layout: tuple[tuple[int, ...], int] | None = None  # (the columns of cells, header width)
    # The earlier tool says this person left ("unsubscribed", "cleaned", "bounced", ...): they
    # are never subscribed, their address goes to the suppression list.  "" for everyone else.
    left: str = ""
    # The consent proof, as its events are written: (first moment, its IP, second moment, its
    # IP); None for rows without it (their event is dated at the import).  See Moments.
    consent: tuple[datetime | None, str | None, datetime | None, str | None] | None = None


@dataclass(slots=True)
class BadRow:
    line: int
    reason: str
    detail: str
    values: list[str] | None  # None: the report gives the line only (suppressed rows)
    end_line: int = 0  # the last physical line of a row the report names as a span


def report_cells(row: GoodRow) -> list[str]:
    """A good row's cells as the report shows them: the columns the import read, others blank."""
    if row.layout is None:
        return list(row.cells or ())
    used, width = row.layout
    cells = [""] * width
    for index, value in zip(used, row.cells or (), strict=True):
        cells[index] = value
    return cells


def hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 by this key (emails.email_hmac's, raw).  The key is prepared once and each
    message hashed on a copy() of the prepared object, rather than preparing the key at every
    call as hmac.digest() does (measured: 1.2 µs a row against 1.6 µs; a hand-written RFC 2104
    over two prepared sha256 objects took 0.7 µs, not worth owning a copy of the construction).
    """
    copy = hmac.new(key, digestmod=hashlib.sha256).copy

    def digest(message: bytes) -> bytes:
        h = copy()
        h.update(message)
        return h.digest()

    return digest


class Moments:
    """Reads a row's proof of consent: its opt-in and confirmation times and IP addresses.

    The events a row gets: one at the opt-in (with its IP), and one at the confirmation when the
    file has both (double opt-in: the request, then the click); one at whichever it has; one at
    the import's own time when it has neither.
    """

    def __init__(self, plan: ColumnPlan):
        self.header = plan.header
        self.columns = [(use, plan.consent[use]) for use in CONSENT_USES if use in plan.consent]
        self.zone: tzinfo = UTC if plan.exporter.naive_utc else timezone.get_default_timezone()
        self.latest = timezone.now() + FUTURE_SLACK  # later is no past event (once per import)
        self.month_first = plan.month_first

    def read(
        self, cells: list[str]
    ) -> tuple[datetime | None, str | None, datetime | None, str | None] | BadRow | None:
        found: dict[str, Any] = {}
        for use, index in self.columns:
            text = cells[index]
            if not text:
                continue
            if use in (OPTIN_TIME, CONFIRM_TIME):
                moment = parse_moment(text, self.zone, self.latest, self.month_first)
                if isinstance(moment, str):
                    why = f"{self.header[index]} is not a date of consent ({moment})"
                    return BadRow(0, "invalid consent date", why, None)
                found[use] = moment
            else:
                address = parse_ip(text)
                if address is None:
                    why = f"{self.header[index]} is not an IP address ({ip_kind(text)})"
                    return BadRow(0, "invalid consent IP address", why, None)
                found[use] = address
        optin, confirm = found.get(OPTIN_TIME), found.get(CONFIRM_TIME)
        if optin is None and confirm is None:
            return None
        if optin is None:
            return (confirm, found.get(CONFIRM_IP), None, None)
        if confirm is None or confirm == optin:
            return (optin, found.get(OPTIN_IP), None, None)
        return (optin, found.get(OPTIN_IP), confirm, found.get(CONFIRM_IP))


class RowParser:
    """Turns source rows into GoodRow or BadRow, by the column plan and the policy.

    parse() is the import's hottest Python (once per row, ~5 µs): it strips every cell once,
    and checks lengths and NULs row-wide before looking field by field.
    """

    def __init__(self, plan: ColumnPlan, delimiter: str = ","):
        self.delimiter = delimiter
        # Columns whose field holds one line (an address, a name, a phone number...): a line
        # break in them followed by a delimiter is the mark of an unterminated quote.
        self.one_line_columns = sorted(
            {
                plan.email,
                *plan.first_name,
                *plan.last_name,
                *(i for f in ONE_LINE_FIELDS for i in plan.fields.get(f, [])),
            }
        )
        # From here on, the plan over the columns it reads only (see ColumnPlan.compacted).
        self.full_plan = plan
        plan, used = plan.compacted()
        self.plan = plan
        self.layout = (used, len(self.full_plan.header))
        self.need = used[-1] + 1
        self.pick: Callable[[list[str]], Sequence[str]] = (
            itemgetter(*used) if len(used) > 1 else (lambda row: (row[used[0]],))
        )
        self.max_lengths = {name: Contact.column_field(name).max_length for name in STORED_COLUMNS}
        self.stored = [
            (position, name, plan.fields.get(name, []))
            for position, name in enumerate(STORED_COLUMNS)
        ]
        # The columns each stored field reads: one (the usual case), none or several.
        self.single = all(len(indexes) <= 1 for _, _, indexes in self.stored)
        self.column_of = [indexes[0] if indexes else -1 for _, _, indexes in self.stored]
        # No value shorter than every limit can be too long: most rows skip the field checks.
        self.shortest_limit = min(limit for limit in self.max_lengths.values() if limit)
        self.name_position = STORED_COLUMNS.index("name")
        self.one_line_positions = [STORED_COLUMNS.index(f) for f in Contact.ONE_LINE_FIELDS]
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
        self.allowed_by_compact = {compact(f): f for f in plan.allowed}
        self.hmac = hmac_sha256(settings.TIDINGS_SUPPRESSION_KEY.encode("utf-8"))
        self.blank = ("",) * len(STORED_COLUMNS)
        self.moments = Moments(plan)
        self.subscribed_words = plan.exporter.subscribed_words

    def _broken_across_lines(self, row: list[str]) -> bool:
        """Whether a one-line field's cell holds a line break followed by a delimiter."""
        delimiter = self.delimiter
        for index in self.one_line_columns:
            if index < len(row):
                value = row[index]
                for brk in ("\n", "\r"):
                    at = value.find(brk)
                    if at >= 0 and delimiter in value[at:]:
                        return True
        return False

    def _cells(self, raw: Sequence[str]) -> list[str]:
        """The cells the plan reads, stripped, a spreadsheet's formula escape undone, and
        without invisible format characters (``lib.text``: bidi overrides and the like)."""
        cells = [v.strip() for v in raw]
        if not "".join(cells).isascii():
            cells = [strip_format_characters(v).strip() for v in cells]
        if "\n'" in "\n" + "\n".join(cells):  # a spreadsheet's escape, rarely
            cells = [_FORMULA_ESCAPE.sub("", v) if v[:1] == "'" else v for v in cells]
        return cells

    def parse(self, source: SourceRow) -> GoodRow | BadRow:
        row = source.values
        line = source.line
        if source.problem is not None:
            reason, detail = source.problem
            return BadRow(line, reason, detail, row, source.end_line)
        if source.end_line > line and self._broken_across_lines(row):
            end = source.end_line
            why = (
                f"a quote opened on line {line} is not closed where the cell ends: lines {line} "
                f"to {end} were read as one row; close the quote and import the report again"
            )
            return BadRow(line, "unterminated quote", why, row, end)
        raw = self.pick(row if len(row) >= self.need else row + [""] * (self.need - len(row)))
        cells = self._cells(raw)
        plan = self.plan
        address = cells[plan.email]
        if not address:
            return BadRow(line, "missing email address", "the email address is blank", row)
        try:
            email = normalise_email(address)
        except InvalidEmail as exc:
            return BadRow(line, "invalid email address", str(exc), row)
        if plan.status:
            left = ""
            for index, use in plan.status:
                left = left_reason(use, cells[index], self.subscribed_words)
                if left:
                    break
            if left == UNREADABLE:  # the kind of value, never the value: it is the person's
                kind = date_kind(cells[index])
                why = f"{plan.header[index]} is not yes or no, nor a date ({kind})"
                return BadRow(line, "unrecognised yes/no value", why, row)
            if left == "pending":
                why = f"{plan.header[index]} says the person never confirmed: no consent to import"
                return BadRow(line, "consent not confirmed", why, row)
            if left == "never":
                why = f"{plan.header[index]} says the person never subscribed: no consent to import"
                return BadRow(line, "no consent", why, row)
            if left:  # nothing but the address is needed, or kept
                key = email.casefold()
                digest = self.hmac(key.encode())
                return GoodRow(line, email, key, self.blank, None, digest, raw, self.layout, left)

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

        joined = "".join(values)
        if has_breaks(joined):  # Alt+Enter in a spreadsheet's name or company cell: a space
            for position in self.one_line_positions:
                values[position] = str(one_line(values[position]))
            joined = "".join(values)
        if max(map(len, values)) > self.shortest_limit or "\x00" in joined:
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
        consent = None
        if plan.consent:
            read = self.moments.read(cells)
            if isinstance(read, BadRow):
                read.line, read.values = line, row
                return read
            consent = read
        key = email.casefold()
        digest = self.hmac(key.encode())
        return GoodRow(
            line, email, key, tuple(values), attributes, digest, raw, self.layout, "", consent
        )

    def _attributes(self, data: dict[str, Any], values: list[str]) -> dict[str, Any] | None:
        """listmonk's attributes: keys mapped like headers; allowed ones kept, others noted."""
        extra: dict[str, Any] = {}
        for key, value in data.items():
            short = compact(str(key))
            target = ALIASES.get(short) or self.allowed_by_compact.get(short, short)
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


@dataclass(slots=True)
class Batch:
    rows: list[GoodRow]
    bad: list[BadRow]
    rows_read: int
    processed_bytes: int


def read_batches(source: CsvSource | XlsxSource, parser: RowParser, size: int) -> Iterator[Batch]:
    """Parsed rows in batches of up to ``size`` good rows (the last one possibly empty)."""
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
            if source_row.end_line > source_row.line:  # the report names every line it covers
                result.end_line = source_row.end_line  # type: ignore[union-attr]
            bad.append(result)  # type: ignore[arg-type]
    yield Batch(rows, bad, read, source.processed_bytes)


COUNTERS = (
    "rows_read",
    "created",
    "updated",
    "unchanged",
    "subscribed",
    "skipped_suppressed",
    "skipped_unsubscribed",
    "left_in_file",
    "duplicates",
    "bad_rows",
)
# The counts that say what became of each row: they add up to rows_read.
OUTCOMES = (
    "created",
    "updated",
    "unchanged",
    "left_in_file",
    "skipped_unsubscribed",
    "skipped_suppressed",
    "duplicates",
    "bad_rows",
)


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
