"""Slow, silent and trickling receivers: each attempt ends at the timeout, a receiver that
does not answer costs the worker one timeout per retry (not one per event), a run of the sender
ends in bounded time, and a row being posted is never taken back by another worker."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tidings import signals
from tidings.api import webhooks
from tidings.api.actions import do_create_webhook_endpoint
from tidings.api.models import WebhookDelivery, WebhookEndpoint
from tidings.api.webhooks import send_due

from .test_webhooks import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick_timeouts(settings):
    settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = True  # the receivers are on 127.0.0.1
    settings.TIDINGS_WEBHOOK_TIMEOUT_SECONDS = 1


class Trickler:
    """Answers every request with a status line, then one header line every 0.2 s for
    ``seconds``: each read gets a byte well within any socket timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.requests = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.requests += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                end = time.monotonic() + self.seconds
                while time.monotonic() < end:
                    conn.sendall(b"X-Wait: 1\r\n")
                    time.sleep(0.2)
                conn.sendall(b"Content-Length: 0\r\n\r\n")
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


class SlowReceiver(Receiver):
    """Answers 204 after ``delay`` seconds (within the timeout)."""

    def __init__(self, delay: float) -> None:
        super().__init__(204)
        handler = self.server.RequestHandlerClass
        original = handler.do_POST

        def do_post(handler_self):
            time.sleep(delay)
            original(handler_self)

        handler.do_POST = do_post  # type: ignore[method-assign]


def events(endpoint_url: str, n: int, event: str = "campaign.finished") -> None:
    do_create_webhook_endpoint(url=endpoint_url, events=[event], fields=[], actor=None)
    for campaign_id in range(1, n + 1):
        signals.campaign_finished.send(sender=None, campaign_id=campaign_id)


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_timeout():
    """Each read got a byte in time, so a socket timeout alone never fired: the attempt lasted
    as long as the receiver liked (8 s here against a 1 s timeout) and held the worker."""
    trickler = Trickler(seconds=8)
    try:
        events(trickler.url, 1)
        started = time.monotonic()
        counts = send_due()
        took = time.monotonic() - started
    finally:
        trickler.close()
    assert counts["retrying"] == 1
    assert took < 4
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_status_code is None
    assert "no complete answer within 1 s" in delivery.last_error
    assert delivery.last_duration_ms < 3000


def test_a_receiver_that_does_not_answer_costs_one_timeout_per_retry_not_one_per_event():
    silent = Trickler(seconds=30)
    healthy = Receiver()
    try:
        events(silent.url, 5)
        do_create_webhook_endpoint(
            url=healthy.url, events=["campaign.finished"], fields=[], actor=None
        )
        signals.campaign_finished.send(sender=None, campaign_id=99)  # to both: 6 for the silent one
        started = time.monotonic()
        counts = send_due()
        assert time.monotonic() - started < 4  # one timeout, not five
        assert counts == {"succeeded": 1, "retrying": 1, "failed": 0, "waiting": 5}
        assert silent.requests == 1
        # The other receiver got its event in the same run.
        [(_, body)] = healthy.received
        assert json.loads(body)["data"] == {"campaign_id": 99}

        # Until the retry is due, the silent endpoint's events wait: no attempt at all.
        assert send_due()["waiting"] == 0
        assert silent.requests == 1
        waiting = WebhookDelivery.objects.filter(endpoint__url=silent.url, attempts=0)
        assert waiting.count() == 5
        assert set(waiting.values_list("status", flat=True)) == {"pending"}
    finally:
        silent.close()
        healthy.close()

    # Once it answers again, at the retry, everything goes.
    later = timezone.now() + timedelta(minutes=5)
    back = Receiver()
    try:
        WebhookEndpoint.objects.filter(url=silent.url).update(url=back.url)
        assert send_due(now=later)["succeeded"] == 6
        assert len(back.received) == 6
    finally:
        back.close()


def test_a_run_starts_no_attempt_after_its_time_limit():
    slow = SlowReceiver(delay=0.6)
    try:
        events(slow.url, 3)
        counts = send_due(max_seconds=0.3)
        assert counts == {"succeeded": 1, "retrying": 0, "failed": 0, "waiting": 2}
        assert WebhookDelivery.objects.filter(status="pending", attempts=0).count() == 2
        assert send_due()["succeeded"] == 2  # the next run sends the rest
    finally:
        slow.close()


def test_a_row_being_posted_is_not_taken_back_by_another_worker_however_long_the_run(
    monkeypatch, settings
):
    """The lease ran from the start of the run: in a run longer than the lease (three
    timeouts), rows claimed late were already free for another worker's reclaim while they
    were being posted, so they went out twice."""
    # The stand-in for the other worker reads the database from inside the exchange, which
    # runs in the sender's own thread only with one receiver at a time (a thread of the pool
    # would have a connection of its own, outside this test's transaction).
    settings.TIDINGS_WEBHOOK_CONCURRENCY = 1
    slow = SlowReceiver(delay=0.8)
    real_post = webhooks.outbound.post
    taken_back: list[int] = []

    def post_while_another_worker_looks(target, body, headers, **kwargs):
        webhooks._reclaim_stale(timezone.now())  # what another worker's run does first
        row = WebhookDelivery.objects.get(msg_id=headers["webhook-id"])
        if row.status != "sending":
            taken_back.append(row.pk)
        return real_post(target, body, headers, **kwargs)

    monkeypatch.setattr(webhooks.outbound, "post", post_while_another_worker_looks)
    try:
        events(slow.url, 5)  # 5 × 0.8 s: past three 1 s timeouts
        assert send_due()["succeeded"] == 5
    finally:
        slow.close()
    assert taken_back == []
    assert len(slow.received) == 5


class SlowButAnswering:
    """Answers 200 after ``delay`` seconds (within the timeout), noting when each POST came."""

    def __init__(self, delay: float) -> None:
        import http.server

        self.arrived: list[tuple[float, str]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.append((time.monotonic(), json.loads(body)["data"]["n"]))
                time.sleep(delay)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _rows(url: str, numbers: list[int]) -> None:
    endpoint = do_create_webhook_endpoint(
        url=url, events=["campaign.finished"], fields=[], actor=None
    )
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            endpoint=endpoint,
            msg_id=f"msg_test_{n}",
            event="campaign.finished",
            data={"n": n},
            next_attempt_at=timezone.now() - timedelta(minutes=1, seconds=-n),
        )
        for n in numbers
    )


def test_a_slow_receiver_does_not_hold_up_another_receivers_events(settings):
    """A receiver answering just within the timeout, row after row, held every other
    receiver's events behind its own: a run posted them in turn, so an event due a moment
    after three of the slow one's waited for three slow answers (beyond the deadline of one
    exchange).  Receivers are posted to side by side now, each in its own order."""
    settings.TIDINGS_WEBHOOK_TIMEOUT_SECONDS = 2
    slow = SlowButAnswering(delay=0.8)
    quick = SlowButAnswering(delay=0)
    try:
        _rows(slow.url, [1, 2, 3])  # due first
        _rows(quick.url, [4, 5])
        started = time.monotonic()
        counts = send_due()
    finally:
        slow.close()
        quick.close()
    assert counts == {"succeeded": 5, "retrying": 0, "failed": 0, "waiting": 0}
    assert [n for _, n in slow.arrived] == [1, 2, 3]  # each receiver's own order is kept
    assert [n for _, n in quick.arrived] == [4, 5]
    # The quick receiver had both its events before the slow one's second was even posted
    # (one after the other, they came after its third answer, 2.4 s in).
    assert quick.arrived[-1][0] < slow.arrived[1][0]
    assert time.monotonic() - started < 4  # the run: the slow receiver's three answers
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
