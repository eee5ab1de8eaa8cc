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
"""

from __future__ import annotations

import logging
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
    try:
        worker.run()
    except SystemExit as exc:  # db_worker's exit when a first signal finds it idle
        if exc.code not in (None, 0):
            raise
