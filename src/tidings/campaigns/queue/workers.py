"""Workers and their leases: registration, heartbeats, recovery of a vanished worker's rows."""

from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from tidings.lib.processes import (
    pid_namespace,
    process_alive,
    process_start_time,
    this_host,
)

from ..config import DeliveryConfig
from ..models import Delivery, DeliveryWorker, OutgoingMessage
from .reads import FINAL

logger = logging.getLogger(__name__)

QUEUED = Delivery.Status.QUEUED
SENDING = Delivery.Status.SENDING


def _lease(config: DeliveryConfig | None) -> timedelta:
    return timedelta(seconds=(config or DeliveryConfig.from_settings()).lease_seconds)


PROCESS_GONE = "its process is gone"


def _silent(lease: timedelta) -> str:
    return f"no heartbeat for over {lease.total_seconds():g} s"


def worker_gone(
    host: str,
    pid: int,
    started: str,
    last_seen: datetime | None,
    now: datetime,
    *,
    namespace: str = "",
    lease: timedelta | None = None,
) -> str:
    """Why the worker process ``pid`` (started at ``started``, in ``namespace`` on ``host``) is
    known to be gone, or "" when nothing says so.  The one rule for the delivery rows a vanished
    worker held (``recover_abandoned``) and for the task it was running (``tidings.web.
    task_worker``).

    - Where its pids are ours (the same ``pid_namespace``; for a worker that recorded none — an
      older version, or no /proc — the same host name), its pid decides: gone once no process
      has that pid and start time, however recent its heartbeat.
    - Anywhere else, its heartbeat (``last_seen``) decides: gone once older than the lease
      (``TIDINGS_DELIVERY_LEASE_SECONDS``).  A worker that keeps no heartbeat (``last_seen``
      None) is never known gone from elsewhere.
    """
    lease = lease or _lease(None)
    # A row without a namespace (an older version's, or from where /proc says nothing): the
    # host name is all there is to go by, as it was.
    ours = namespace == pid_namespace() if namespace else host == this_host()
    if ours:
        return "" if process_alive(pid, started) else PROCESS_GONE
    if last_seen is not None and last_seen < now - lease:
        return _silent(lease)
    return ""


def register_worker(*, sends_mail: bool = True) -> DeliveryWorker:
    """A heartbeat row for this process: a delivery engine's (``sends_mail``), or that of a
    ``tidings worker`` running background tasks (``tidings.web.task_worker``), so that its task
    can be taken back from another machine once it is gone."""
    pid = os.getpid()
    return DeliveryWorker.objects.create(
        id=uuid.uuid4().hex,
        host=this_host(),
        pid=pid,
        process_started=process_start_time(pid),
        pid_namespace=pid_namespace(),
        sends_mail=sends_mail,
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


def beat(worker_id: str) -> bool:
    """Refresh the heartbeat of a worker that holds no delivery rows (a task runner's); False
    if another worker has declared it gone."""
    alive = DeliveryWorker.objects.filter(pk=worker_id, stopped_at__isnull=True)
    return bool(alive.update(last_seen=timezone.now()))


def live_workers(*, config: DeliveryConfig | None = None) -> int:
    """Delivery workers whose heartbeat is current (they share the send rate)."""
    cutoff = timezone.now() - _lease(config)
    return DeliveryWorker.objects.filter(
        sends_mail=True, stopped_at__isnull=True, last_seen__gte=cutoff
    ).count()


def _requeue_rows_of(worker_id: str) -> int:
    returned = 0
    for model in (Delivery, OutgoingMessage):
        returned += model.objects.filter(status=SENDING, leased_by=worker_id).update(
            status=QUEUED, leased_by="", leased_until=None
        )
    return returned


def recover_abandoned(me: str = "", *, config: DeliveryConfig | None = None) -> int:
    """Return to the queue the rows of workers that are gone; returns how many rows.

    A worker is gone when ``worker_gone`` says so (its process no longer exists, where its pids
    are ours; its heartbeat lapsed, elsewhere), and when its heartbeat is older than the lease
    even though its process still runs here (stuck: its leases have lapsed anyway).  Each gone
    worker is claimed by one conditional UPDATE, so when several workers recover at once, one of
    them does it and logs it.  Rows whose lease lapsed
    without their worker being known gone (a stuck worker) are returned too.
    """
    now = timezone.now()
    lease = _lease(config)
    returned = 0
    for worker in DeliveryWorker.objects.filter(stopped_at__isnull=True).exclude(pk=me):
        # Why it is gone, in the log: an operator (and the kill tests) can tell a crash noticed
        # at once from a worker that went silent and waited out its lease.
        why = worker_gone(
            worker.host,
            worker.pid,
            worker.process_started,
            worker.last_seen,
            now,
            namespace=worker.pid_namespace,
            lease=lease,
        )
        if not why and worker.last_seen < now - lease:
            why = _silent(lease)
        if not why:
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
