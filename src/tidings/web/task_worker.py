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
and pid namespace (``worker_name``) and keeps a heartbeat while it runs tasks (``TaskHeartbeat``),
and ``requeue_orphaned_tasks`` — run when a worker starts and at every tick of its scheduler —
puts back in the queue a RUNNING task whose worker is gone (``queue.workers.worker_gone``, the
rule the delivery rows follow): where its pids are ours, its process no longer exists;
elsewhere, that process's heartbeat has lapsed.
"""

from __future__ import annotations

import logging
import os
import signal
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
    """A task worker's id as its tasks record it: ``host/pid/process start/pid namespace/suffix``
    (``queue.workers.pid_namespace``: where the pid may be looked up)."""
    from tidings.lib.processes import pid_namespace, process_start_time, this_host

    pid = os.getpid()
    return f"{this_host()}/{pid}/{process_start_time(pid)}/{pid_namespace()}/{suffix}"


def _parse_worker_name(name: str) -> tuple[str, int, str, str] | None:
    """(host, pid, process start, pid namespace) from ``worker_name``'s id; None if the task was
    claimed by a worker not named so (db_worker run by hand).  Names of older versions have no
    namespace (``host/pid/start/suffix``)."""
    parts = name.split("/")
    if len(parts) not in (4, 5) or not parts[1].isdigit():
        return None
    namespace = parts[3] if len(parts) == 5 else ""
    return parts[0], int(parts[1]), parts[2], namespace


def _worker_gone(name: str, *, now, lease) -> str:
    """Why the worker named ``name`` is gone ("" if it is not known to be): the rule of
    ``queue.workers.worker_gone``, with the heartbeat of that process (``TaskHeartbeat``, or its
    delivery engine's, whichever is newer)."""
    from django.db.models import Max

    from tidings.campaigns.models import DeliveryWorker
    from tidings.campaigns.queue.workers import worker_gone

    parsed = _parse_worker_name(name)
    if parsed is None:
        return ""
    host, pid, started, namespace = parsed
    last_seen = DeliveryWorker.objects.filter(
        host=host, pid=pid, process_started=started, pid_namespace=namespace
    ).aggregate(last=Max("last_seen"))["last"]
    return worker_gone(host, pid, started, last_seen, now, namespace=namespace, lease=lease)


def requeue_orphaned_tasks() -> int:
    """Put back in the queue every RUNNING task whose worker is gone; returns how many."""
    from datetime import timedelta

    from django.utils import timezone

    from tidings.campaigns.config import DeliveryConfig

    now = timezone.now()
    lease = timedelta(seconds=DeliveryConfig.from_settings().lease_seconds)
    requeued = 0
    running = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING)
    for task in running.only("pk", "worker_ids", "started_at", "task_path"):
        name = task.worker_ids[-1] if task.worker_ids else ""
        why = _worker_gone(name, now=now, lease=lease)
        if not why:
            continue
        # Conditional: a task another worker took back (and perhaps started again) meanwhile
        # has another started_at.
        if DBTaskResult.objects.filter(
            pk=task.pk, status=TaskResultStatus.RUNNING, started_at=task.started_at
        ).update(status=TaskResultStatus.READY, started_at=None):
            requeued += 1
            logger.warning(
                "worker: task %s (%s) was running in worker pid %s, which is gone: queued again "
                "(%s)",
                task.pk,
                task.task_path,
                name.split("/")[1],
                why,
            )
    return requeued


class TaskHeartbeat(threading.Thread):
    """The heartbeat of a ``tidings worker`` running background tasks: a ``DeliveryWorker`` row
    (``sends_mail`` false) refreshed every lease/6 seconds, so that a worker on another machine
    can tell when the task this one was running may be run again.  Without it, a worker started
    with ``--no-delivery`` had none, and its tasks were taken back only from its own machine."""

    def __init__(self) -> None:
        super().__init__(name="tidings-task-heartbeat", daemon=True)
        self.stopping = threading.Event()
        self.worker_id = ""

    def start(self) -> None:
        from tidings.campaigns.queue.workers import register_worker

        self.worker_id = register_worker(sends_mail=False).pk  # before any task is claimed
        super().start()

    def run(self) -> None:
        from django.db import DatabaseError, close_old_connections, connection

        from tidings.campaigns.config import DeliveryConfig

        every = max(0.5, DeliveryConfig.from_settings().lease_seconds / 6)
        try:
            while not self.stopping.wait(every):
                try:
                    self.beat()
                except DatabaseError:
                    logger.warning("worker: heartbeat not written (database error); retrying")
                    close_old_connections()
                    connection.close()
        finally:
            connection.close()

    def beat(self) -> None:
        from tidings.campaigns.queue.workers import beat, register_worker

        if not beat(self.worker_id):
            logger.error(
                "worker: task worker %s was declared gone by another worker (its task may run "
                "again elsewhere); registering again",
                self.worker_id,
            )
            self.worker_id = register_worker(sends_mail=False).pk

    def stop(self) -> None:
        from django.db import DatabaseError

        from tidings.campaigns.queue.workers import stop_worker

        self.stopping.set()
        if self.is_alive():
            self.join(10)
        if self.worker_id:
            try:
                stop_worker(self.worker_id)
            except DatabaseError:
                logger.warning("worker: could not record the task worker's stop")


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
