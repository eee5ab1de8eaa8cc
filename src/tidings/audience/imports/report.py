"""What the import tells people: the bad-rows CSV file, and the one-line summary."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from django.utils import timezone

from tidings.policy.ropa import safe_cell

from ..models import Import
from .exporters import GENERIC, Exporter, by_key
from .rows import BadRow


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
            # The file's own header is as hostile as its rows ("=HYPERLINK(...)" as a column name).
            self._writer.writerow(["line", "reason", *(safe_cell(h) for h in self.header)])
        cells = [safe_cell(v) for v in bad.values] if bad.values is not None else []
        line = f"{bad.line}-{bad.end_line}" if bad.end_line > bad.line else bad.line
        # The reason may name a column: as hostile as the header.
        self._writer.writerow([line, safe_cell(bad.detail), *cells])

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()


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
    if imp.left_in_file:
        parts.append(f"{imp.left_in_file:,} who left the earlier tool (now suppressed)")
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
    read_as = (
        "an Excel workbook's first sheet"
        if imp.encoding == "xlsx"
        else f"{imp.encoding}, {delimiter}-separated"
    )
    return f"{verb} {imp.rows_read:,} rows into {name!r}{speed}: {', '.join(parts)}; {read_as}."


def file_kind(imp: Import, exporter: Exporter) -> str:
    """ "a CSV file", "an Excel workbook", "a HubSpot export" or "a HubSpot export (an Excel
    workbook)": what the file was, for the consent wording and for the person to read."""
    workbook = imp.encoding == "xlsx"
    if exporter is GENERIC:
        return "an Excel workbook" if workbook else "a CSV file"
    return f"a {exporter.label} export" + (" (an Excel workbook)" if workbook else "")


def origin(imp: Import) -> str:
    """Where an import's people came from, for them to read: "contacts.csv, a Mailchimp
    export, imported on 6 May 2026"."""
    tool = file_kind(imp, by_key(imp.exporter))
    when = timezone.localdate(imp.started_at or imp.created_at)
    return f"{imp.original_filename or 'a file'}, {tool}, imported on {date_in_words(when)}"


def date_in_words(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip


def ignored_text(imp: Import) -> str:
    """ "ignored columns: x, y — why; z — why", or "" when every column was used."""
    if not imp.ignored_columns:
        return ""
    return "ignored columns: " + "; ".join(
        f"{', '.join(columns)} — {why}" for why, columns in imp.ignored_columns.items()
    )
