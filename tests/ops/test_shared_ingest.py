"""Several workers drain the shared Redis ingest queue at once: each row is written exactly once."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from tidings.lib import ingest

SINK = "ops-test-drain"


@pytest.fixture
def shared_ingest(redis_url, settings):
    settings.TIDINGS_INGEST_BATCH = 50
    yield redis_url
    ingest.unregister_sink(SINK)


def test_two_drainers_at_once_write_every_row_exactly_once(shared_ingest, tmp_path):
    # Two processes drain at once, as two `tidings worker` processes do: forked from this one,
    # so each has the sink registered here and its own process-wide flush lock; only Redis is
    # shared.  Each writes the rows it drained to a file of its own.
    def slow_writer(rows: list[dict]) -> None:
        time.sleep(0.01)  # a database write: long enough for the other drainer to look
        with (tmp_path / f"written-{os.getpid()}").open("a") as out:
            out.writelines(f"{row['n']}\n" for row in rows)

    ingest.register_sink(SINK, slow_writer)
    for n in range(2000):
        ingest.submit(SINK, {"n": n})
    fork = multiprocessing.get_context("fork")
    drainers = [fork.Process(target=ingest.flush) for _ in range(2)]
    for drainer in drainers:
        drainer.start()
    for drainer in drainers:
        drainer.join(timeout=60)
    assert [drainer.exitcode for drainer in drainers] == [0, 0]
    ingest.flush()  # whatever a drainer that gave way left
    assert sorted(_written(tmp_path)) == list(range(2000))


def _written(folder: Path) -> list[int]:
    return [int(line) for path in folder.glob("written-*") for line in path.read_text().split()]


def test_a_process_that_is_not_a_worker_leaves_the_shared_queue_to_the_workers_at_exit(
    shared_ingest,
):
    """`tidings doctor`, `tidings backup`, a web process shutting down: at exit each writes its
    own waiting rows, never drains the queue every web process shares (the workers' job)."""
    written: list[dict] = []
    ingest.register_sink(SINK, written.extend)
    ingest.submit(SINK, {"n": 1})
    ingest._flush_at_exit()
    assert written == []
    assert ingest.pending(SINK) == 1


def test_a_command_ends_without_a_traceback_when_redis_is_down(settings, caplog):
    """The doctor reports "cannot reach Redis" as a finding; its exit must not add a traceback."""
    settings.TIDINGS_REDIS_URL = "redis://127.0.0.1:1/0"
    ingest._flush_at_exit()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
