"""Reading ahead in a thread, and writing with several connections at once (PostgreSQL)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from ..models import Import
from .lanes import Lane, Run
from .rows import Batch, GoodRow, Tally
from .source import ImportFailed
from .writers import PostgresWriter, Writer

Progress = Callable[[Import], None]


class Inline:
    """Prefetch's interface without the thread."""

    def __init__(self, iterator: Iterator[Any]):
        self._iterator = iterator

    def __iter__(self) -> Iterator[Any]:
        return self._iterator

    def close(self) -> None:
        pass


def prefetch_wanted() -> bool:
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


def lane_of(row: GoodRow, lanes: int) -> int:
    """The writer a row goes to: the same for every address the unique index takes for the
    same (the index is on email_key, which is row.key), so that a later duplicate always meets
    the earlier row's contact in its own lane."""
    return hash(row.key) % lanes


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

    def __init__(
        self, imp: Import, writer: Writer, done: queue.Queue[Part], statuses: bool = False
    ):
        self.lane = Lane(imp, writer, statuses)
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
    """Batches split by address between the lanes (ImportConfig.writers); counts and report
    kept in file order.

    The parser and the screening (duplicates within a batch, suppressions) run in the import's
    own thread, which then hands each lane its share and, as parts come back committed, adds
    their counts and writes the report rows of each batch once all its parts are done.
    """

    def __init__(self, run: Run, writers: list[Writer], progress: Progress | None):
        self.run = run
        self.progress = progress
        self.done: queue.Queue[Part] = queue.Queue()
        statuses = bool(run.plan.status)
        self.lanes = [LaneThread(run.imp, w, self.done, statuses) for w in writers]
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
