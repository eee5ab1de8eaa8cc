"""Screening and writing the rows of a batch: first of each address, suppressions, new and
existing contacts, and the counts of what happened."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any

from ..actions import do_end_subscriptions_by_import
from ..emails import email_domain
from ..models import Import, Subscription, SuppressedDomain, Suppression
from ..subscriptions import ACTIVE
from .columns import STORED_COLUMNS, ColumnPlan
from .config import ImportConfig
from .report import Report
from .rows import BadRow, Batch, GoodRow, RowParser, Tally, report_cells
from .source import CsvSource
from .workbook import XlsxSource
from .writers import Existing, Writer


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


SUBSCRIBABLE = (None, Subscription.Status.PENDING, Subscription.Status.CONFIRMED)
# How a subscription here ends for each way of leaving the earlier tool (rows.GoodRow.left): an
# address the earlier tool cleaned bounced, a spam report is a complaint; any other way
# (unsubscribed, blocklisted, deleted by its account...) is an unsubscribe.
LEFT_STATUSES = {
    "cleaned": Subscription.Status.BOUNCED,
    "bounced": Subscription.Status.BOUNCED,
    "complained": Subscription.Status.COMPLAINED,
}


class SuppressionList:
    """Which rows' addresses are suppressed (Suppression.email_hmac of their email_key).

    Up to ``cache_limit`` entries are kept in memory as raw digests (~100 bytes each), with
    entries added since the last batch fetched by primary key; a longer list is asked per batch.
    Measured: asking PostgreSQL per batch cost ~4 µs a row, more than the HMAC itself.
    """

    def __init__(self, writer: Writer, cache_limit: int):
        self.writer = writer
        self.cache_limit = cache_limit
        self.last_pk = 0
        self.cached: set[bytes] | None = None
        if Suppression.objects.count() <= self.cache_limit:
            self.cached = set()
            self._refresh()

    def _refresh(self) -> None:
        assert self.cached is not None
        new = Suppression.objects.filter(pk__gt=self.last_pk).order_by("pk")
        for pk, hex_digest in new.values_list("pk", "email_hmac").iterator(chunk_size=10_000):
            self.cached.add(bytes.fromhex(hex_digest))
            self.last_pk = pk
        if len(self.cached) > self.cache_limit:
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


class Lane:
    """Writes rows whose addresses are its own: all of them, or one writer's share.

    Remembers which file line each contact it wrote came from, for "duplicate of line N" across
    batches: a later row for the same address always comes to the same lane, after the earlier.
    """

    def __init__(self, imp: Import, writer: Writer, statuses: bool = False):
        self.imp = imp
        self.writer = writer
        self.seen = LineIndex()
        # Look the batch's addresses up before inserting: at first (the database may hold
        # them), then as the last batch says (see write()).
        self.lookup_first = True
        self.statuses = statuses  # the file says who left (rows may be GoodRow.left)

    def write(self, rows: list[GoodRow], tally: Tally) -> None:
        """Rows already screened (first of their address in the batch, not suppressed)."""
        writer, counts = self.writer, tally.counts
        if self.statuses:
            left = [r for r in rows if r.left]
            if left:
                # People who left the earlier tool: on the suppression list, never subscribed.
                writer.suppress(left)
                counts["left_in_file"] += len(left)
                self._unsubscribe_here(left)
                rows = [r for r in rows if not r.left]
        # New addresses: contact, confirmed subscription and consent event, in one go.  When
        # addresses of the last batch were taken (a merge into a known audience, a re-run),
        # the batch's addresses are looked up first and only the new ones inserted.  On
        # PostgreSQL that pays as soon as any was taken (Writer.lookup_when_any_taken): the
        # insert then goes without ON CONFLICT, whose speculative insertion cost ~4 µs a row,
        # and no batch's insert is rolled back for one taken address (server CPU merging
        # 100,000 rows into 100,000 with 10% overlap: 35.5 -> 32.0 µs a row).  SQLite's
        # conflict check is an index probe like the look-up, so there it pays only when most
        # were taken (the same merge, one run each: 31.7 µs a row, 33.3 looking up every batch).
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
        if writer.lookup_when_any_taken:
            self.lookup_first = bool(taken)
        else:
            self.lookup_first = len(taken) > len(rows) // 2
        if taken:
            if found is None or any(r.key not in found for r in taken):
                # Looked up before the insert, yet taken since: another writer was quicker.
                found = self._existing_by_key(taken)
            self._write_existing(taken, found, tally)

    def _unsubscribe_here(self, rows: Sequence[GoodRow]) -> None:
        """Who left the earlier tool but is subscribed to the list here (an earlier import of
        its export, a form): the file is the later word, so their subscription ends, with a
        withdrawal in the ledger, as an unsubscribe link would end it.  The suppression alone
        kept them from being mailed, but the list and the ledger still said they consented."""
        mailing_list = self.imp.mailing_list
        if self.imp.dry_run or mailing_list is None:
            return
        unsubscribed = Subscription.Status.UNSUBSCRIBED
        status_of = {r.key: LEFT_STATUSES.get(r.left, unsubscribed) for r in rows}
        by_status: dict[str, list[int]] = {}
        for found in self.writer.existing([r.key for r in rows]):
            if found.status in ACTIVE:
                by_status.setdefault(status_of[found.key], []).append(found.id)
        for status, ids in sorted(by_status.items()):
            # One batch per way of leaving: a few statements and one contacts_unsubscribed
            # signal for everyone the batch ended (journeys exit them, webhooks say
            # contact.unsubscribed).
            do_end_subscriptions_by_import(
                ids, mailing_list, source_ref=f"import:{self.imp.pk}", status=status
            )

    def _existing_by_key(self, rows: Sequence[GoodRow]) -> dict[str, Existing]:
        return {e.key: e for e in self.writer.existing([r.key for r in rows])}

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
                # Taken (the insert conflicted on email_key) yet not found by its key: only a
                # concurrent erasure between the two statements does that.  Not ours to guess.
                why = "conflicts with an existing contact's address"
                tally.bad(BadRow(row.line, "address conflict", why, report_cells(row)))
                continue
            line = self.seen.get(found.id)
            if line:
                tally.bad(duplicate_of(row, line), "duplicates")
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
            by_id = None
            if writer.proof:
                by_id = {by_key[r.key].id: r for r in rows if r.key in by_key}
            writer.consent_events(granted, by_id)
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


def duplicate_of(row: GoodRow, line: int) -> BadRow:
    return BadRow(row.line, "duplicate", f"duplicate of line {line}", report_cells(row))


class Run:
    """One import's state while it runs: counters, report, the rows' screening, the lane."""

    def __init__(
        self,
        imp: Import,
        source: CsvSource | XlsxSource,
        plan: ColumnPlan,
        writer: Writer,
        config: ImportConfig,
    ):
        self.config = config
        self.imp = imp
        self.source = source
        self.plan = plan
        self.parser = RowParser(plan, source.format.delimiter)
        self.writer = writer
        self.lane = Lane(imp, writer, bool(plan.status))
        self.report = Report(None if imp.dry_run else imp.report_path, source.header)
        self.reasons: dict[str, dict[str, int]] = dict(imp.bad_reasons or {})
        self.suppressed_domains = {
            d.lower() for d in SuppressedDomain.objects.values_list("domain", flat=True)
        }
        self.suppressions = SuppressionList(writer, config.suppression_cache_limit)
        self.tally = Tally()  # the batch being written

    def write_batch(self, batch: Batch) -> None:
        """Write one batch (the caller holds its transaction) and count what happened."""
        self.tally = self.start(batch)
        self.writer.begin_batch()
        self.lane.write(self.screen(batch.rows, self.tally), self.tally)
        self.finish(self.tally)

    def start(self, batch: Batch) -> Tally:
        """A batch's tally, holding what the parser found: rows read and bad rows."""
        tally = Tally()
        tally.counts["rows_read"] = batch.rows_read
        for row in batch.bad:
            tally.bad(row)
        return tally

    def screen(self, batch: list[GoodRow], tally: Tally) -> list[GoodRow]:
        """The rows to write: the first of each address in the batch, none suppressed; but a
        later row saying the person left (Unsubscribed under an earlier Active: a sheet merged
        from a tool's files, a person on two of its lists) takes the first's place, the first
        being the duplicate.  A file's order says nothing of which came last, and consent
        withdrawn anywhere in it must not be imported as given (a later batch's row that left
        ends the subscription the earlier batch made, in Lane.write: the same outcome)."""
        first: dict[str, int] = {}  # address -> index in rows
        rows: list[GoodRow] = []
        for row in batch:
            index = first.setdefault(row.key, len(rows))
            if index == len(rows):
                rows.append(row)
                continue
            earlier = rows[index]
            if row.left and not earlier.left:
                rows[index] = row
                why = f"duplicate of line {row.line}, which says they left"
                tally.bad(
                    BadRow(earlier.line, "duplicate", why, report_cells(earlier)), "duplicates"
                )
            else:
                tally.bad(duplicate_of(row, earlier.line), "duplicates")

        # Suppressed addresses and domains: skipped, reported by line number only.
        suppressed = self.suppressions.matching(rows)
        domains = self.suppressed_domains
        if suppressed or domains:
            kept = []
            for row in rows:
                if row.left:  # left the earlier tool: counted so, whether suppressed here or not
                    kept.append(row)
                elif row.key in suppressed or (domains and email_domain(row.email) in domains):
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
