"""/healthz, /readyz and /metrics, through the WSGI application the server runs (tidings.wsgi)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from django.test import RequestFactory
from django.utils import timezone

from tests.campaigns.delivery_helpers import (
    SmtpSink,
    free_port,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import Campaign, Delivery, DeliveryWorker

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def _in_the_test_transaction(settings):
    # The endpoints fire request_started/finished as Django's handler does; like Django's test
    # client, keep close_old_connections from closing the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    settings.TIDINGS_REDIS_URL = ""
    settings.TIDINGS_METRICS_TOKEN = TOKEN
    settings.TIDINGS_METRICS_CACHE_SECONDS = 0
    cache.clear()
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True, scope="module")
def _wsgi_loaded():
    """Loading ``tidings.wsgi`` runs ``django.setup()``, whose logging set-up replaces the root
    logger's handlers, pytest's log capture among them: loaded before any test's ``caplog``
    exists, a test that is the first of its process to call the application still sees logs."""
    import tidings.wsgi  # noqa: F401


def call(path: str, method: str = "GET", **headers: str) -> tuple[int, dict, bytes]:
    from tidings.wsgi import application

    environ = RequestFactory().generic(method, path, **headers).environ
    answer: dict = {}

    def start_response(status, response_headers):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    body = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], body


def metrics() -> dict[str, float]:
    status, headers, body = call("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


# --- health ------------------------------------------------------------------------------------
def test_healthz_answers_ok_whatever_the_host_header():
    status, headers, body = call("/healthz", HTTP_HOST="10.1.2.3:8000")
    assert (status, body) == (200, b"ok\n")
    assert headers["Cache-Control"] == "no-store"


def test_readyz_reports_the_database():
    status, _, body = call("/readyz", HTTP_HOST="unlisted.example")
    assert status == 200
    assert body == b'{"status": "ready", "checks": {"database": "ok"}}\n'


def test_readyz_is_503_naming_redis_when_redis_is_configured_but_unreachable(settings):
    settings.TIDINGS_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    status, _, body = call("/readyz")
    assert status == 503
    assert b'"redis": "unreachable"' in body
    assert b'"database": "ok"' in body
    assert b"127.0.0.1" not in body  # no error text


def test_head_works_and_other_methods_are_refused():
    assert call("/healthz", "HEAD")[2] == b""
    assert call("/healthz", "HEAD")[0] == 200
    assert call("/readyz", "POST")[0] == 405


# --- the token -----------------------------------------------------------------------------------
def test_metrics_are_off_without_a_configured_token(settings):
    settings.TIDINGS_METRICS_TOKEN = ""
    assert call("/metrics", HTTP_AUTHORIZATION="Bearer ")[0] == 404
    assert call("/metrics")[0] == 404


def test_metrics_are_refused_without_the_token_or_with_a_wrong_one():
    status, headers, body = call("/metrics")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert b"tidings_" not in body
    assert call("/metrics", HTTP_AUTHORIZATION="Bearer wrong")[0] == 401
    assert call("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}")[0] == 401
    assert call("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")[0] == 200


# --- what the metrics say ------------------------------------------------------------------------
def test_queue_depth_by_state_counts_ready_retrying_and_claimed_rows():
    people = subscribers(make_list(), 6)
    campaign = sending_campaign(make_list())
    ids = list(Delivery.objects.filter(campaign=campaign).values_list("pk", flat=True))
    assert len(ids) == len(people)
    Delivery.objects.filter(pk__in=ids[:2]).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5), attempts=1
    )
    Delivery.objects.filter(pk=ids[2]).update(status="sending", leased_by="w")
    Delivery.objects.filter(pk=ids[3]).update(status="sent")
    values = metrics()
    assert values['tidings_queue_depth{queue="campaign",state="ready"}'] == 2
    assert values['tidings_queue_depth{queue="campaign",state="waiting_retry"}'] == 2
    assert values['tidings_queue_depth{queue="campaign",state="sending"}'] == 1
    assert values['tidings_campaigns{status="sending"}'] == 1


def test_messages_per_transport_and_outcome_come_from_the_workers_heartbeat_rows(settings):
    people = subscribers(make_list(), 5)
    sending_campaign(make_list())
    with SmtpSink() as sink:
        sink.answers[people[0].email] = ["550 5.7.1 Refused by policy"]
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending(max_seconds=30)
    worker = DeliveryWorker.objects.get()
    values = metrics()
    series = 'tidings_messages_total{{outcome="{}",transport="default",worker="' + worker.pk + '"}}'
    assert values[series.format("sent")] == 4
    assert values[series.format("failed")] == 1
    assert values["tidings_workers_alive"] == 0  # it stopped


def test_the_circuit_breaker_state_is_published_and_an_automatic_pause_counts_as_open(settings):
    settings.TIDINGS_BREAKER_MIN = 5
    settings.TIDINGS_BREAKER_WINDOW = 10
    subscribers(make_list(), 12)
    campaign = sending_campaign(make_list())
    with SmtpSink(refuse_all="554 5.7.1 Refused by policy") as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
        deliver_pending(max_seconds=30)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    values = metrics()
    assert values["tidings_circuit_breaker_open"] == 1


def test_a_workers_breaker_ratio_and_send_rate_are_read_from_its_heartbeat_row():
    now = timezone.now()
    DeliveryWorker.objects.create(
        id="w-live",
        host="mail1",
        pid=1,
        last_seen=now,
        state={
            "transports": {"default": {"sent": 90, "retry": 3}},
            "rate": 42.5,
            "breaker": {"threshold": 0.5, "min": 20, "campaigns": {"7": [40, 10]}},
            "unreachable": ["8"],
        },
    )
    DeliveryWorker.objects.create(
        id="w-old", host="mail2", pid=2, last_seen=now - timedelta(hours=2), state={"rate": 99}
    )
    # A `tidings worker --no-delivery`'s heartbeat: no delivery worker.
    DeliveryWorker.objects.create(id="t-tasks", host="app1", pid=3, last_seen=now, sends_mail=False)
    values = metrics()
    assert values["tidings_send_rate_per_second"] == 42.5
    assert values['tidings_circuit_breaker_failure_ratio{campaign="7",worker="w-live"}'] == 0.25
    assert values['tidings_campaign_server_unreachable{campaign="8",worker="w-live"}'] == 1
    retries = 'tidings_messages_total{outcome="retry",transport="default",worker="w-live"}'
    assert values[retries] == 3
    assert values["tidings_workers_alive"] == 1
    assert not any("w-old" in name or "t-tasks" in name for name in values)


def test_tracking_rows_waiting_and_the_lag_of_the_last_write_are_shown(settings):
    from tidings.campaigns.tracking import OPEN, submit_event
    from tidings.lib import ingest

    subscribers(make_list(), 1)
    delivery = Delivery.objects.filter(campaign=sending_campaign(make_list())).get()
    Delivery.objects.filter(pk=delivery.pk).update(status="sent", sent_at=timezone.now())
    submit_event(delivery.pk, OPEN, machine=False)
    submit_event(delivery.pk, OPEN, machine=False)
    values = metrics()
    assert values['tidings_ingest_waiting_rows{sink="tracking",where="process"}'] == 2
    assert values['tidings_ingest_oldest_waiting_seconds{sink="tracking",where="process"}'] >= 0
    ingest.flush()
    values = metrics()
    assert values['tidings_ingest_waiting_rows{sink="tracking",where="process"}'] == 0
    assert 0 <= values['tidings_ingest_lag_seconds{sink="tracking"}'] < 60


def test_with_redis_the_backlog_of_every_web_process_is_seen(redis_url):
    from tidings.campaigns.tracking import OPEN, submit_event

    for _ in range(3):
        submit_event(1, OPEN, machine=False)  # as three other web processes would
    values = metrics()
    assert values['tidings_ingest_waiting_rows{sink="tracking",where="redis"}'] == 3


def test_import_rate_retention_and_rights_requests(settings):
    from tidings.audience.models import Import
    from tidings.rights.models import RightsRequest
    from tidings.rights.retention import run_retention

    now = timezone.now()
    Import.objects.create(
        status=Import.Status.RUNNING,
        consent_source="test",
        rows_read=20_000,
        started_at=now - timedelta(seconds=10),
    )
    run_retention(actor_label="test")
    today = timezone.localdate()
    RightsRequest.objects.create(kind="erase", due_on=today - timedelta(days=1), email_hmac="a")
    RightsRequest.objects.create(kind="erase", due_on=today + timedelta(days=3), email_hmac="b")
    RightsRequest.objects.create(
        kind="access",
        due_on=today - timedelta(days=2),
        extended_to=today + timedelta(days=30),
        email_hmac="c",
    )
    RightsRequest.objects.create(
        kind="access", state="completed", due_on=today - timedelta(days=9), email_hmac="d"
    )
    values = metrics()
    assert values["tidings_imports_running"] == 1
    assert 1_500 < values["tidings_import_rows_per_second"] <= 2_000
    assert values["tidings_retention_last_run_timestamp_seconds"] == pytest.approx(
        now.timestamp(), abs=60
    )
    assert values['tidings_rights_requests_open{kind="erase"}'] == 2
    assert values['tidings_rights_requests_overdue{kind="erase"}'] == 1
    assert values['tidings_rights_requests_open{kind="access"}'] == 1
    assert values['tidings_rights_requests_overdue{kind="access"}'] == 0  # extended


def test_the_text_is_cached_for_the_configured_seconds(settings):
    settings.TIDINGS_METRICS_CACHE_SECONDS = 30
    first = metrics()['tidings_campaigns{status="sending"}']
    subscribers(make_list(), 1)
    sending_campaign(make_list())
    assert metrics()['tidings_campaigns{status="sending"}'] == first
    cache.clear()
    assert metrics()['tidings_campaigns{status="sending"}'] == first + 1


def test_no_address_appears_in_the_metrics(settings):
    people = subscribers(make_list(), 3)
    sending_campaign(make_list())
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending(max_seconds=30)
    text = call("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")[2].decode()
    assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", text)
    assert all(p.name not in text for p in people)


def test_readyz_is_503_on_a_database_without_tables(tmp_path):
    """The SQLite file was lost (or DATABASE_URL named an empty database): /readyz answered
    "ready" — opening a missing SQLite file makes a new, empty one, and SELECT 1 works there —
    while every page was an error, so the load balancer kept sending visitors to it."""
    import subprocess
    import sys

    from tests.ops.test_backup_restore import ROOT, env_for

    probe = (
        "import django, json; django.setup(); "
        "from tidings.ops.endpoints import readyz; "
        "status, _, body = readyz(); print(json.dumps([status, body.decode()]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=env_for(tmp_path / "empty", DJANGO_SETTINGS_MODULE="tidings.settings"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    status, body = json.loads(result.stdout.strip().splitlines()[-1])
    assert status.startswith("503")
    assert json.loads(body) == {"status": "not ready", "checks": {"database": "not migrated"}}


def test_metrics_still_answer_while_redis_is_unreachable(settings, monkeypatch):
    """Redis down: /metrics was an empty 500 and a traceback, just when an operator looks."""
    from tidings.lib import ingest
    from tidings.settings import cache_settings

    settings.TIDINGS_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = cache_settings(settings.TIDINGS_REDIS_URL)  # as tidings.settings makes it
    settings.TIDINGS_METRICS_CACHE_SECONDS = 10
    monkeypatch.setattr(ingest, "_redis_client", None)

    values = metrics()

    assert values['tidings_queue_depth{queue="campaign",state="ready"}'] == 0
    assert values['tidings_ingest_waiting_rows{sink="tracking",where="process"}'] == 0


def test_metrics_are_503_in_one_line_while_the_database_is_unreachable(monkeypatch, caplog):
    from django.db import OperationalError

    from tidings.ops import metrics as metrics_module

    def unreachable() -> bytes:
        raise OperationalError('connection to server at "127.0.0.1", port 5439 failed')

    monkeypatch.setattr(metrics_module, "render", unreachable)

    status, _, body = call("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert status == 503
    assert body == b"Service Unavailable: the database is unreachable\n"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "metrics: the database is unreachable"
    ]
    assert not [r for r in caplog.records if r.exc_info]
