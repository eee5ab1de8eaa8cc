"""``tidings worker``: delivery heartbeats seen recently, background tasks being picked up."""

from __future__ import annotations

from datetime import timedelta

from django.db import DatabaseError
from django.utils import timezone

from tidings.ops.doctor import FAIL, OK, WARN, Finding, register

TASK_WAIT_WARNING = timedelta(minutes=5)  # a ready task older than this: nobody runs tasks


@register("workers", order=50)
def check_workers() -> list[Finding]:
    try:
        return [_delivery_workers(), _tasks()]
    except DatabaseError:
        return [
            Finding(
                "workers",
                FAIL,
                "not checked: the database cannot be read (see the database check)",
                "make the database check pass first",
            )
        ]


def _delivery_workers() -> Finding:
    from tidings.campaigns.config import DeliveryConfig
    from tidings.campaigns.models import DeliveryWorker

    now = timezone.now()
    lease = DeliveryConfig.from_settings().lease_seconds
    senders = DeliveryWorker.objects.filter(sends_mail=True)  # not the task runners' heartbeats
    running = senders.filter(stopped_at__isnull=True)
    live = running.filter(last_seen__gte=now - timedelta(seconds=lease))
    count = live.count()
    fix = (
        "start it: `systemctl start tidings-worker` (deploy/tidings-worker.service) or "
        "`tidings worker`; its log says why it stopped"
    )
    if count:
        newest = live.order_by("-last_seen").values_list("last_seen", flat=True).first()
        hosts = sorted(set(live.values_list("host", flat=True)))
        assert newest is not None  # live workers were seen lately
        age = (now - newest).total_seconds()
        return Finding(
            "workers.delivery",
            OK,
            f"{count} delivery worker(s) alive on {', '.join(hosts)}; last heartbeat "
            f"{age:.0f} s ago",
        )
    last = senders.order_by("-last_seen").values_list("last_seen", flat=True)
    seen = last.first()
    if seen is None:
        return Finding("workers.delivery", FAIL, "no delivery worker has ever run", fix)
    return Finding(
        "workers.delivery",
        FAIL,
        f"no delivery worker alive: the last heartbeat was {_ago(now - seen)} ago "
        "(nothing is being sent)",
        fix,
    )


def _tasks() -> Finding:
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    waiting = DBTaskResult.objects.ready().filter(run_after__lt=now - TASK_WAIT_WARNING)
    oldest = waiting.order_by("run_after").values_list("run_after", flat=True).first()
    if oldest is not None:
        return Finding(
            "workers.tasks",
            WARN,
            f"background tasks (imports, exports, sweeps) have waited {_ago(now - oldest)}: "
            "no `tidings worker` runs tasks (workers started with --delivery-only do not)",
            "run at least one `tidings worker` without --delivery-only",
        )
    return Finding("workers.tasks", OK, "no background task has waited over 5 minutes")


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
