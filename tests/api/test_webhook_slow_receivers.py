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
    monkeypatch,
):
    """The lease ran from the start of the run: in a run longer than the lease (three
    timeouts), rows claimed late were already free for another worker's reclaim while they
    were being posted, so they went out twice."""
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
