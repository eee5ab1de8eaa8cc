"""Buffered ingest (tidings.lib.ingest): rows wait, then reach their sink in batches."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tidings.campaigns.models import Event, EventCounter
from tidings.lib import ingest

from .event_helpers import sent_campaign


@pytest.fixture
def collected():
    rows: list[list[dict]] = []
    ingest.register_sink("test-collect", rows.append)
    return rows


def test_submitting_writes_nothing_until_flushed(collected):
    ingest.submit("test-collect", {"n": 1})
    ingest.submit("test-collect", {"n": 2})
    assert collected == []
    assert ingest.pending("test-collect") == 2
    ingest.flush()
    assert collected == [[{"n": 1}, {"n": 2}]]
    assert ingest.pending("test-collect") == 0


def test_a_full_batch_is_written_without_waiting(collected, settings):
    settings.TIDINGS_INGEST_BATCH = 3
    for n in range(7):
        ingest.submit("test-collect", {"n": n})
    assert [len(batch) for batch in collected] == [3, 3]
    ingest.flush()
    assert [len(batch) for batch in collected] == [3, 3, 1]


def test_rows_for_a_name_nobody_registered_are_refused():
    with pytest.raises(KeyError, match="no ingest sink"):
        ingest.submit("nobody-listens", {"n": 1})


def test_rows_a_failing_writer_could_not_write_are_retried():
    calls = []

    def flaky(rows):
        calls.append(list(rows))
        if len(calls) == 1:
            raise ConnectionError("database unavailable")

    ingest.register_sink("test-flaky", flaky)
    ingest.submit("test-flaky", {"n": 1})
    ingest.flush()
    ingest.submit("test-flaky", {"n": 2})
    ingest.flush()
    assert calls == [[{"n": 1}], [{"n": 1}, {"n": 2}]]
    assert ingest.pending("test-flaky") == 0


def test_the_background_thread_flushes_within_the_interval(settings, collected):
    settings.TIDINGS_INGEST_FLUSH_SECONDS = 0.05
    ingest.submit("test-collect", {"n": 1})
    deadline = time.monotonic() + 5
    while not collected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert collected == [[{"n": 1}]]


@pytest.mark.django_db
def test_tracking_rows_become_events_and_counters_in_one_batch():
    campaign, deliveries = sent_campaign(people=3)
    now = time.time()
    for d in deliveries:
        ingest.submit("tracking", {"d": d.pk, "k": "open", "l": None, "m": False, "t": now})
        ingest.submit("tracking", {"d": d.pk, "k": "open", "l": None, "m": False, "t": now})
    assert not Event.objects.exists()
    with CaptureQueriesContext(connection) as queries:
        ingest.flush()
    assert Event.objects.filter(kind="open").count() == 6
    total, people = EventCounter.objects.filter(
        campaign=campaign, kind="open", machine=False, link=-1, bucket=0
    ).values_list("total", "people")[0]
    assert (total, people) == (6, 3)
    # Deliveries, who allows tracking now (one ledger query), earlier events, the insert and
    # the counters: not one query per row.
    assert len(queries) <= 9


@pytest.mark.django_db
def test_malformed_tracking_rows_are_dropped_not_raised():
    _, (delivery, *_) = sent_campaign(people=1)
    now = time.time()
    ingest.submit("tracking", {"d": "x"})
    ingest.submit("tracking", {"d": delivery.pk, "k": "bounce_hard", "t": now})
    ingest.submit("tracking", {"d": delivery.pk, "k": "click", "l": 0, "m": False, "t": now})
    ingest.flush()
    assert list(Event.objects.values_list("kind", flat=True)) == ["click"]


@pytest.fixture
def redis_url(settings):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    settings.TIDINGS_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    yield settings.TIDINGS_REDIS_URL
    proc.terminate()
    proc.wait(timeout=10)


def test_with_redis_rows_wait_in_a_shared_list_until_the_worker_drains_it(redis_url, collected):
    import redis

    ingest.submit("test-collect", {"n": 1})
    ingest.submit("test-collect", {"n": 2})
    assert collected == []
    # Another web process sees the same queue.
    assert redis.Redis.from_url(redis_url).llen("tidings:ingest:test-collect") == 2
    ingest.flush()
    assert collected == [[{"n": 1}, {"n": 2}]]
    assert ingest.pending("test-collect") == 0


def test_with_redis_rows_stay_queued_when_the_writer_fails(redis_url):
    calls = []

    def flaky(rows):
        calls.append(list(rows))
        if len(calls) == 1:
            raise ConnectionError("database unavailable")

    ingest.register_sink("test-flaky-redis", flaky)
    ingest.submit("test-flaky-redis", {"n": 1})
    ingest.flush()
    assert ingest.pending("test-flaky-redis") == 1
    ingest.flush()
    assert calls == [[{"n": 1}], [{"n": 1}]]
    assert ingest.pending("test-flaky-redis") == 0


def test_the_workers_drain_thread_writes_what_web_processes_queued_in_redis(redis_url, collected):
    drain = ingest.DrainThread(interval=0.05)
    drain.start()
    try:
        ingest.submit("test-collect", {"n": 1})
        deadline = time.monotonic() + 5
        while not collected and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        drain.stop()
    assert collected == [[{"n": 1}]]
    assert not drain.is_alive()
