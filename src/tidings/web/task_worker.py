"""django-tasks-db's worker loop, with what a second stop signal does made safe.

``db_worker`` on its own: the first SIGTERM (or Ctrl-C) lets the task in hand finish, then stops;
a second one raises ``SystemExit`` inside the task, which is then recorded as FAILED and never
runs again, and the exception ends ``tidings worker`` wherever it is — also while the delivery
engine is handing its claimed messages back, so those stayed claimed until their lease ran out.
A second SIGTERM is no rare mistake: systemd's default ``KillMode=control-group`` signals every
process of the unit, so ``tidings serve --with-worker`` hands its worker one SIGTERM from systemd
and one from its keeper.

Here the second signal means "stop now, but lose nothing": the task in hand is interrupted and
put back in the queue (READY: it runs again, from the start, on the next worker), and ``hurry``
is set so that ``tidings worker`` stops waiting for the messages on the wire and hands every row
its delivery engine holds back to the queue at once.

A worker killed outright (``kill -9``, the OOM killer, a power cut) leaves its task RUNNING, and
django-tasks-db has no lease to take it back: a one-off task (an operator's notice, an import's
run) was lost for good.  So each worker names itself by host, pid and process start time
(``worker_name``), and ``requeue_orphaned_tasks`` — run when a worker starts and at every tick of
its scheduler — puts back in the queue a RUNNING task whose worker is gone: on this host, its
process no longer exists; on another, that process's delivery heartbeat has lapsed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from types import FrameType

from django.tasks.base import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

logger = logging.getLogger(__name__)


class StopNow(BaseException):
    """Raised inside the task in hand by a second stop signal (a BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` in a task swallows it)."""


class GracefulWorker(Worker):
    def __init__(self, *, hurry: threading.Event, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hurry = hurry
        self.interrupted = False

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        if self.running:
            super().shutdown(signum, frame)  # the first: finish the task in hand, then stop
            return
        if self.hurry.is_set():
            return
        logger.warning(
            "worker: %s again: stopping now; the task in hand goes back to the queue",
            signal.strsignal(signum),
        )
        self.hurry.set()
        if self.running_task:
            self.interrupted = True
            raise StopNow()

    def run_task(self, db_task_result: DBTaskResult) -> None:
        record_failure = db_task_result.set_failed

        def set_failed(exc: BaseException) -> None:
            """db_worker records what ended the task as a failure: the interruption instead puts
            it straight back in the queue, in the same single write, so that the task is never
            FAILED in the database, not even for a moment (a worker killed in that moment left
            it FAILED for good: a lost task), and no monitor sees a failure that was not one."""
            if not (self.interrupted and isinstance(exc, StopNow)):
                record_failure(exc)
                return
            DBTaskResult.objects.filter(pk=db_task_result.pk).update(
                status=TaskResultStatus.READY,
                started_at=None,
                finished_at=None,
                exception_class_path="",
                traceback="",
            )
            db_task_result.status = TaskResultStatus.READY

        db_task_result.set_failed = set_failed
        super().run_task(db_task_result)
        if self.interrupted:
            self.interrupted = False
            logger.warning("worker: task %s interrupted and queued again", db_task_result.pk)


def worker_name(suffix: str) -> str:
    """A task worker's id as its tasks record it: ``host/pid/process start/suffix``."""
    from tidings.campaigns.queue.workers import process_start_time

    pid = os.getpid()
    return f"{socket.gethostname()[:100]}/{pid}/{process_start_time(pid)}/{suffix}"


def _worker_gone(name: str, *, host: str, stale) -> bool:
    from tidings.campaigns.models import DeliveryWorker
    from tidings.campaigns.queue.workers import process_alive

    parts = name.split("/")
    if len(parts) != 4 or not parts[1].isdigit():
        return False  # not named by us (an older version, or db_worker run by hand): unknown
    where, pid, started = parts[0], int(parts[1]), parts[2]
    if where == host:
        return not process_alive(pid, started)
    # Another machine: gone when that process's delivery heartbeat has lapsed (a worker run
    # with --no-delivery has none, and is left alone: nothing says it is gone).
    beats = DeliveryWorker.objects.filter(host=where, pid=pid, process_started=started)
    return beats.exists() and not beats.filter(last_seen__gte=stale).exists()


def requeue_orphaned_tasks() -> int:
    """Put back in the queue every RUNNING task whose worker is gone; returns how many."""
    from datetime import timedelta

    from django.utils import timezone

    from tidings.campaigns.config import DeliveryConfig

    host = socket.gethostname()[:100]
    stale = timezone.now() - timedelta(seconds=DeliveryConfig.from_settings().lease_seconds)
    requeued = 0
    running = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING)
    for task in running.only("pk", "worker_ids", "started_at", "task_path"):
        name = task.worker_ids[-1] if task.worker_ids else ""
        if not _worker_gone(name, host=host, stale=stale):
            continue
        # Conditional: a task another worker took back (and perhaps started again) meanwhile
        # has another started_at.
        if DBTaskResult.objects.filter(
            pk=task.pk, status=TaskResultStatus.RUNNING, started_at=task.started_at
        ).update(status=TaskResultStatus.READY, started_at=None):
            requeued += 1
            logger.warning(
                "worker: task %s (%s) was running in worker pid %s, which is gone: queued again",
                task.pk,
                task.task_path,
                name.split("/")[1],
            )
    return requeued


def run_tasks(*, interval: float, hurry: threading.Event, worker_id: str) -> None:
    """``db_worker``'s loop over the default queue and backend (its defaults), until a signal."""
    from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME

    worker = GracefulWorker(
        hurry=hurry,
        queue_names=[DEFAULT_TASK_QUEUE_NAME],
        interval=interval,
        batch=False,
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
        startup_delay=True,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    )
    worker.configure_signals()
    requeue_orphaned_tasks()
    try:
        worker.run()
    except SystemExit as exc:  # db_worker's exit when a first signal finds it idle
        if exc.code not in (None, 0):
            raise
