"""Periodic jobs: each app registers what must run every so often (``lib.periodic``); workers
enqueue them.

Several workers may run on several machines: a run is claimed by moving ``next_run_at`` forward
with a conditional UPDATE, and only the worker whose UPDATE changed exactly one row enqueues the
task (the habit from healthchecks' sendalerts).  The task itself then runs through the ordinary
task queue, so a slow job never stalls the scheduler.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone
from django.utils.module_loading import import_string

from tidings.lib import periodic

from .task_worker import requeue_orphaned_tasks

logger = logging.getLogger(__name__)

CLOCK_SLACK = timedelta(minutes=1)  # how far apart the workers' clocks may be


def run_due(now=None) -> list[str]:
    """Enqueue every job whose time has come; returns the names enqueued by this process."""
    from .models import ScheduledJob

    now = now or timezone.now()
    enqueued = []
    for job in list(periodic.REGISTRY.values()):
        row, _ = ScheduledJob.objects.get_or_create(name=job.name, defaults={"next_run_at": now})
        # Not due yet, unless the wait is longer than the job's period: its period was shortened
        # (an upgrade), and the run planned under the old one is not waited for.  CLOCK_SLACK: a
        # worker whose clock is a little behind the one that planned the run waits for it.
        if now < row.next_run_at <= now + job.every + CLOCK_SLACK:
            continue
        claimed = ScheduledJob.objects.filter(pk=row.pk, next_run_at=row.next_run_at).update(
            next_run_at=now + job.every, last_run_at=now
        )
        if claimed == 1:
            import_string(job.task).enqueue()
            enqueued.append(job.name)
            logger.debug("scheduled job enqueued: %s", job.name)
    return enqueued


class SchedulerThread(threading.Thread):
    """Checks the registry every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 30.0):
        super().__init__(name="tidings-scheduler", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                close_old_connections()
                run_due()
                requeue_orphaned_tasks()  # a killed worker's task runs again (task_worker.py)
            except Exception:  # a failed check is retried at the next tick; never kill the worker
                logger.exception("scheduler tick failed")
            self.stopping.wait(self.interval)
        close_old_connections()

    def stop(self) -> None:
        self.stopping.set()
