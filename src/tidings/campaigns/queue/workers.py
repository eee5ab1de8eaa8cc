"""Workers and their leases: registration, heartbeats, recovery of a vanished worker's rows."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..config import DeliveryConfig
from ..models import Delivery, DeliveryWorker, OutgoingMessage
from .reads import FINAL

logger = logging.getLogger(__name__)

QUEUED = Delivery.Status.QUEUED
SENDING = Delivery.Status.SENDING


def _lease(config: DeliveryConfig | None) -> timedelta:
    return timedelta(seconds=(config or DeliveryConfig.from_settings()).lease_seconds)


def process_start_time(pid: int) -> str:
    """When process ``pid`` started, in the kernel's clock ticks since boot ("" if unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fp:  # noqa: PTH123
            stat = fp.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    fields = stat.rpartition(b")")[2].split()
    return fields[19].decode() if len(fields) > 19 else ""


def process_alive(pid: int, started: str) -> bool:
    """Is the process that registered as (pid, started) still running on this host?"""
    if started:
        return process_start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register_worker() -> DeliveryWorker:
    pid = os.getpid()
    return DeliveryWorker.objects.create(
        id=uuid.uuid4().hex,
        host=socket.gethostname()[:255],
        pid=pid,
        process_started=process_start_time(pid),
    )


def heartbeat(
    worker_id: str, *, config: DeliveryConfig | None = None, state: dict[str, Any] | None = None
) -> bool:
    """Refresh the worker's heartbeat and its leases, and store ``state`` (what it publishes for
    /metrics: ``worker_state``).  False if another worker has declared it gone (its rows are back
    in the queue: whatever it still holds is no longer its own)."""
    now = timezone.now()
    until = now + _lease(config)
    alive = DeliveryWorker.objects.filter(pk=worker_id, stopped_at__isnull=True).update(
        last_seen=now, **({"state": state} if state is not None else {})
    )
    if alive:
        for model in (Delivery, OutgoingMessage):
            model.objects.filter(status=SENDING, leased_by=worker_id).update(leased_until=until)
    return bool(alive)


def live_workers(*, config: DeliveryConfig | None = None) -> int:
    cutoff = timezone.now() - _lease(config)
    return DeliveryWorker.objects.filter(stopped_at__isnull=True, last_seen__gte=cutoff).count()


def _requeue_rows_of(worker_id: str) -> int:
    returned = 0
    for model in (Delivery, OutgoingMessage):
        returned += model.objects.filter(status=SENDING, leased_by=worker_id).update(
            status=QUEUED, leased_by="", leased_until=None
        )
    return returned


def recover_abandoned(me: str = "", *, config: DeliveryConfig | None = None) -> int:
    """Return to the queue the rows of workers that are gone; returns how many rows.

    A worker is gone when its heartbeat is older than the lease, or when it ran on this host and
    its process no longer exists.  Each gone worker is claimed by one conditional UPDATE, so when
    several workers recover at once, one of them does it and logs it.  Rows whose lease lapsed
    without their worker being known gone (a stuck worker) are returned too.
    """
    now = timezone.now()
    host = socket.gethostname()[:255]
    stale = now - _lease(config)
    returned = 0
    for worker in DeliveryWorker.objects.filter(stopped_at__isnull=True).exclude(pk=me):
        # Why it is gone, in the log: an operator (and the kill tests) can tell a crash noticed
        # at once from a worker that went silent and waited out its lease.
        if worker.host == host and not process_alive(worker.pid, worker.process_started):
            why = "its process is gone"
        elif worker.last_seen < stale:
            why = f"no heartbeat for over {_lease(config).total_seconds():g} s"
        else:
            continue
        with transaction.atomic():
            claimed = DeliveryWorker.objects.filter(pk=worker.pk, stopped_at__isnull=True).update(
                stopped_at=now, recovered_at=now
            )
            if not claimed:
                continue
            rows = _requeue_rows_of(worker.pk)
            DeliveryWorker.objects.filter(pk=worker.pk).update(recovered_rows=rows)
        returned += rows
        if rows:
            logger.warning(
                "recovered %d rows from worker %s (%s, pid %s), gone since %s (%s): returned to "
                "the queue; up to %d of them may have been delivered already and will go out twice",
                rows,
                worker.pk,
                worker.host,
                worker.pid,
                worker.last_seen.isoformat(timespec="seconds"),
                why,
                rows,
            )
        else:
            logger.info(
                "worker %s (pid %s) is gone (%s); it held no rows", worker.pk, worker.pid, why
            )
    for model in (Delivery, OutgoingMessage):
        lapsed = model.objects.filter(status=SENDING, leased_until__lt=now).exclude(leased_by=me)
        count = lapsed.update(status=QUEUED, leased_by="", leased_until=None)
        if count:
            logger.warning(
                "%d %s rows whose lease lapsed were returned to the queue (possibly sent twice)",
                count,
                model._meta.verbose_name,
            )
        returned += count
    return returned


def stop_worker(worker_id: str) -> int:
    """A worker stopping cleanly: release whatever it still holds; returns how many rows."""
    released = _requeue_rows_of(worker_id)
    DeliveryWorker.objects.filter(pk=worker_id).update(stopped_at=timezone.now())
    return released


def purge_history(now: datetime | None = None, *, config: DeliveryConfig | None = None) -> int:
    """Forget workers stopped over a week ago and one-off messages finished more than
    ``TIDINGS_OUTGOING_KEEP_DAYS`` (default 30) days ago; returns how many rows went."""
    now = now or timezone.now()
    keep = timedelta(days=(config or DeliveryConfig.from_settings()).outgoing_keep_days)
    workers, _ = DeliveryWorker.objects.filter(stopped_at__lt=now - timedelta(days=7)).delete()
    messages, _ = OutgoingMessage.objects.filter(
        status__in=FINAL, created_at__lt=now - keep
    ).delete()
    return workers + messages
