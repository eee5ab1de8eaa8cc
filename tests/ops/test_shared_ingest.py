"""Several workers drain the shared Redis ingest queue at once: each row is written exactly once."""

from __future__ import annotations

import threading
import time

import pytest

from tidings.web import ingest

SINK = "ops-test-drain"


@pytest.fixture
def shared_ingest(redis_url, settings):
    settings.TIDINGS_INGEST_BATCH = 50
    yield redis_url
    ingest._sinks.pop(SINK, None)


def test_two_drainers_at_once_write_every_row_exactly_once(shared_ingest):
    written: list[int] = []
    lock = threading.Lock()

    def slow_writer(rows: list[dict]) -> None:
        time.sleep(0.01)  # a database write: long enough for the other drainer to look
        with lock:
            written.extend(row["n"] for row in rows)

    ingest.register_sink(SINK, slow_writer)
    for n in range(2000):
        ingest.submit(SINK, {"n": n})
    drainers = [threading.Thread(target=ingest.flush) for _ in range(2)]
    # The two threads stand for two `tidings worker` processes: _flush_lock is per process.
    original = ingest._flush_lock
    ingest._flush_lock = _NoLock()
    try:
        for thread in drainers:
            thread.start()
        for thread in drainers:
            thread.join(timeout=60)
        ingest.flush()  # whatever a drainer that gave way left
    finally:
        ingest._flush_lock = original
    assert sorted(written) == list(range(2000))


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
