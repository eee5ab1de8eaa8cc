"""Prometheus metrics for the whole installation, computed from shared state.

Several web and worker processes run on several machines; a scrape reaches one web process.  So
nothing here is a per-process counter: every value is read from what all processes share.

* **The database**: queue depth by state (partial indexes: ``delivery_queue``, ``delivery_leases``
  and ``delivery_retry_wait`` keep each count to the rows in that state, never the sent ones),
  campaigns by status (and those the circuit breaker paused), running imports and their rows/s,
  what the last retention runs removed (their audit entries), rights requests open and overdue
  (index ``state, due_on``).
* **The delivery workers' heartbeat rows**: each worker writes a small snapshot with every
  heartbeat (``campaigns/worker_state.py``): messages handed to each transport by outcome (sent,
  failed, retry, skipped), its send rate over the last heartbeat interval, its circuit breaker's
  failure ratio per campaign.  Counters are per worker (label ``worker``) and start at zero with
  each worker process, as Prometheus expects: ``sum by (transport) (rate(...[5m]))``.
* **The ingest queues**: with Redis, the length of each list and the age of its oldest row, and
  the lag of the last batch written (noted in Redis by whichever process wrote it).  Without Redis
  the rows wait in each web process's memory and only this process's buffer can be seen
  (``where="process"``).

The text is computed at most once per ``TIDINGS_METRICS_CACHE_SECONDS`` (10) and kept in Django's
cache, so with Redis one computation serves every web process.  ``bench/metrics.py`` times it at a
million queued deliveries.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

CACHE_KEY = "tidings:metrics:v1"
WORKER_WINDOW = timedelta(hours=1)  # workers whose counters are still shown after they stop


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class TidingsCollector:
    """A prometheus-client collector that reads the shared state once per collection."""

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        now = timezone.now()
        yield from self._queue(now)
        yield from self._campaigns()
        yield from self._workers(now)
        yield from self._ingest()
        yield from self._imports(now)
        yield from self._retention(now)
        yield from self._rights(now)
        took = _gauge("tidings_metrics_collect_seconds", "How long computing these metrics took.")
        took.add_metric([], time.perf_counter() - started)
        yield took

    # -- the queue -----------------------------------------------------------------------------
    def _queue(self, now) -> Iterator[Metric]:
        from tidings.campaigns.models import Delivery, OutgoingMessage

        depth = _gauge(
            "tidings_queue_depth",
            "Messages waiting in the queue: ready (queued, due now), waiting_retry (queued for a "
            "later attempt), sending (claimed by a worker).",
            ["queue", "state"],
        )
        for model, queue in ((Delivery, "campaign"), (OutgoingMessage, "one_off")):
            queued = model.objects.filter(status="queued").count()
            waiting = model.objects.filter(
                status="queued", next_attempt_at__isnull=False, next_attempt_at__gt=now
            ).count()
            depth.add_metric([queue, "ready"], queued - waiting)
            depth.add_metric([queue, "waiting_retry"], waiting)
            depth.add_metric([queue, "sending"], model.objects.filter(status="sending").count())
        yield depth

    def _campaigns(self) -> Iterator[Metric]:
        from tidings.campaigns.models import Campaign

        campaigns = _gauge("tidings_campaigns", "Campaigns by status.", ["status"])
        counts = dict(Campaign.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in Campaign.Status.values:
            campaigns.add_metric([status], counts.get(status, 0))
        yield campaigns
        tripped = _gauge(
            "tidings_circuit_breaker_open",
            "Campaigns paused automatically (circuit breaker: too many failures, server "
            "unreachable, template failure) and not resumed yet.",
        )
        tripped.add_metric(
            [],
            Campaign.objects.filter(
                status=Campaign.Status.PAUSED, paused_reason__startswith="Paused automatically"
            ).count(),
        )
        yield tripped

    # -- the workers' heartbeat rows -----------------------------------------------------------
    def _workers(self, now) -> Iterator[Metric]:
        from tidings.campaigns.config import DeliveryConfig
        from tidings.campaigns.models import DeliveryWorker

        lease = timedelta(seconds=DeliveryConfig.from_settings().lease_seconds)
        # Index on last_seen: the workers of the last hour, however many ran before.  Delivery
        # workers only: a task runner's heartbeat row sends nothing.
        rows = list(
            DeliveryWorker.objects.filter(
                last_seen__gte=now - WORKER_WINDOW, sends_mail=True
            ).values_list("id", "host", "last_seen", "stopped_at", "state")
        )
        alive = _gauge("tidings_workers_alive", "Delivery workers whose heartbeat is current.")
        alive.add_metric([], sum(1 for r in rows if r[3] is None and r[2] >= now - lease))
        yield alive
        age = _gauge(
            "tidings_worker_heartbeat_age_seconds",
            "Seconds since each running worker's last heartbeat.",
            ["worker", "host"],
        )
        messages = CounterMetricFamily(
            "tidings_messages",
            "Messages handed to each transport by each worker since it started, by outcome "
            "(sent, failed, retry, skipped).",
            labels=["worker", "transport", "outcome"],
        )
        rate = _gauge(
            "tidings_send_rate_per_second",
            "Messages sent per second by the live workers (over their last heartbeat interval).",
        )
        ratio = _gauge(
            "tidings_circuit_breaker_failure_ratio",
            "Failed share of a campaign's last attempts in a worker (the breaker opens above "
            "TIDINGS_BREAKER_THRESHOLD once TIDINGS_BREAKER_MIN attempts were made).",
            ["worker", "campaign"],
        )
        unreachable = _gauge(
            "tidings_campaign_server_unreachable",
            "1 while a worker cannot hand a campaign's messages to any server.",
            ["worker", "campaign"],
        )
        total_rate = 0.0
        for worker_id, host, last_seen, stopped_at, state in rows:
            state = state or {}
            if stopped_at is None:
                age.add_metric([worker_id, host], (now - last_seen).total_seconds())
            for transport, outcomes in (state.get("transports") or {}).items():
                for outcome, n in outcomes.items():
                    messages.add_metric([worker_id, transport, outcome], n)
            if stopped_at is None and last_seen >= now - lease:
                total_rate += float(state.get("rate") or 0.0)
                for campaign, (attempts, failures) in (
                    (state.get("breaker") or {}).get("campaigns") or {}
                ).items():
                    ratio.add_metric([worker_id, campaign], failures / attempts if attempts else 0)
                for campaign in state.get("unreachable") or ():
                    unreachable.add_metric([worker_id, campaign], 1)
        rate.add_metric([], total_rate)
        yield from (age, messages, rate, ratio, unreachable)

    # -- buffered ingest (tracking, page views) ------------------------------------------------
    def _ingest(self) -> Iterator[Metric]:
        from tidings.lib import ingest

        waiting = _gauge(
            "tidings_ingest_waiting_rows",
            "Tracking/analytics rows waiting to be written, in Redis (all web processes) or in "
            "this web process's memory (without Redis).",
            ["sink", "where"],
        )
        oldest = _gauge(
            "tidings_ingest_oldest_waiting_seconds",
            "Age of the oldest row waiting to be written (0 when none waits).",
            ["sink", "where"],
        )
        for backlog in ingest.backlog():
            waiting.add_metric([backlog.sink, backlog.where], backlog.rows)
            oldest.add_metric([backlog.sink, backlog.where], backlog.oldest_seconds or 0.0)
        yield waiting
        yield oldest
        lag = _gauge(
            "tidings_ingest_lag_seconds",
            "Age of the oldest row of the last batch written: how far behind events are written.",
            ["sink"],
        )
        last = _gauge(
            "tidings_ingest_last_write_timestamp_seconds",
            "When the last batch was written.",
            ["sink"],
        )
        for sink, note in sorted(ingest.last_writes().items()):
            lag.add_metric([sink], float(note.get("lag", 0.0)))
            last.add_metric([sink], float(note.get("at", 0.0)))
        yield lag
        yield last

    # -- imports, retention, rights ------------------------------------------------------------
    def _imports(self, now) -> Iterator[Metric]:
        from tidings.audience.models import Import

        running = list(
            Import.objects.filter(status=Import.Status.RUNNING, started_at__isnull=False)
            .values_list("rows_read", "started_at")
            .order_by()[:100]
        )
        count = _gauge("tidings_imports_running", "Imports running now.")
        count.add_metric([], len(running))
        rate = _gauge(
            "tidings_import_rows_per_second",
            "Rows per second read by the running imports (together), since each started.",
        )
        rate.add_metric(
            [],
            sum(rows / max((now - started).total_seconds(), 1e-3) for rows, started in running),
        )
        last = (
            Import.objects.filter(status=Import.Status.FINISHED, started_at__isnull=False)
            .exclude(finished_at=None)
            .order_by("-finished_at")
            .values_list("rows_read", "started_at", "finished_at")
            .first()
        )
        finished = _gauge(
            "tidings_import_last_rows_per_second",
            "Rows per second of the import that finished last.",
        )
        if last is not None:
            rows, started, ended = last
            assert started is not None and ended is not None  # both filtered on above
            finished.add_metric([], rows / max((ended - started).total_seconds(), 1e-3))
        yield from (count, rate, finished)

    def _retention(self, now) -> Iterator[Metric]:
        from tidings.lib.models import AuditEntry

        entries = list(
            AuditEntry.objects.filter(action="retention.run", at__gte=now - timedelta(days=1))
            .order_by("at")
            .values_list("at", "details")[:1000]
        )
        day = _gauge(
            "tidings_retention_rows_removed_last_day",
            "Records removed by retention sweeps in the last 24 hours, by kind (contacts: the "
            "people left with nothing).",
            ["kind"],
        )
        totals: dict[str, int] = {}
        for _, details in entries:
            for kind, n in (details.get("counts") or {}).items():
                totals[kind] = totals.get(kind, 0) + int(n)
            totals["contacts"] = totals.get("contacts", 0) + int(details.get("contacts", 0))
        for kind, n in sorted(totals.items()):
            day.add_metric([kind], n)
        yield day
        last_run = (
            AuditEntry.objects.filter(action="retention.run")
            .order_by("-at")
            .values_list("at", flat=True)
            .first()
        )
        when = _gauge(
            "tidings_retention_last_run_timestamp_seconds", "When the last retention sweep ran."
        )
        if last_run is not None:
            when.add_metric([], last_run.timestamp())
        yield when

    def _rights(self, now) -> Iterator[Metric]:
        from django.db.models import Case, DateField, F, When

        from tidings.rights.models import RightsRequest

        due = Case(
            When(extended_to__isnull=False, then=F("extended_to")),
            default=F("due_on"),
            output_field=DateField(),
        )
        open_requests = RightsRequest.objects.filter(state__in=RightsRequest.OPEN_STATES)
        today = timezone.localdate(now)
        opened = dict(open_requests.order_by().values_list("kind").annotate(n=Count("pk")))
        overdue: dict[str, int] = dict(
            open_requests.annotate(due_day=due)
            .filter(due_day__lt=today)
            .order_by()
            .values_list("kind")
            .annotate(n=Count("pk"))
        )
        open_metric = _gauge("tidings_rights_requests_open", "Open rights requests.", ["kind"])
        overdue_metric = _gauge(
            "tidings_rights_requests_overdue",
            "Open rights requests past their due date (the extended one when extended).",
            ["kind"],
        )
        for kind in RightsRequest.Kind.values:
            open_metric.add_metric([kind], opened.get(kind, 0))
            overdue_metric.add_metric([kind], overdue.get(kind, 0))
        yield open_metric
        yield overdue_metric


def render() -> bytes:
    """The exposition text, from the cache when it is fresh enough."""
    seconds = int(getattr(settings, "TIDINGS_METRICS_CACHE_SECONDS", 10))
    if seconds > 0:
        cached = cache.get(CACHE_KEY)
        if cached is not None:
            return cached
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TidingsCollector())
    text = generate_latest(registry)
    if seconds > 0:
        cache.set(CACHE_KEY, text, seconds)
    return text
