"""The task a second stop signal interrupts is put back in the queue, never recorded FAILED."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.tasks.base import TaskResultStatus
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult

from tests.web import slow_tasks
from tidings.web.task_worker import GracefulWorker

pytestmark = pytest.mark.django_db


def _worker() -> GracefulWorker:
    return GracefulWorker(
        hurry=threading.Event(),
        queue_names=["default"],
        interval=0.1,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test",
        excluded_queue_names=[],
    )


def test_the_interrupted_task_is_queued_again_without_ever_being_failed(monkeypatch):
    """db_worker first saved the task FAILED, then the worker put it back: a worker killed (or a
    database gone) between the two writes lost the task for good, and anything watching the
    table saw a failure that was not one."""
    worker = _worker()
    monkeypatch.setattr(slow_tasks, "RUNNING_WORKER", [worker])
    result = slow_tasks.interrupted_by_a_second_signal.enqueue()
    row = DBTaskResult.objects.get(pk=result.id)

    with CaptureQueriesContext(connection) as queries:
        worker.run_task(row)

    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("UPDATE")]
    assert writes and not any("FAILED" in sql for sql in writes), writes
    row.refresh_from_db()
    assert (row.status, row.exception_class_path, row.finished_at) == (
        TaskResultStatus.READY,
        "",
        None,
    )
    assert not worker.interrupted


def test_any_other_failure_of_a_task_is_still_recorded(monkeypatch):
    worker = _worker()
    monkeypatch.setattr(slow_tasks, "RUNNING_WORKER", [])  # IndexError inside the task
    result = slow_tasks.interrupted_by_a_second_signal.enqueue()
    row = DBTaskResult.objects.get(pk=result.id)

    worker.run_task(row)

    row.refresh_from_db()
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == "builtins.IndexError"
