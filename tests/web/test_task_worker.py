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


# --- a worker killed outright: its task runs again ----------------------------------------------
def _running_task(worker: str) -> DBTaskResult:
    result = slow_tasks.interrupted_by_a_second_signal.enqueue()
    row = DBTaskResult.objects.get(pk=result.id)
    row.claim(worker)  # RUNNING, as db_worker's claim leaves it
    return row


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_task_left_running_by_a_killed_worker_is_queued_again_and_a_live_ones_is_not(caplog):
    """kill -9 (or the OOM killer) left the task RUNNING for ever: django-tasks-db has no lease,
    so a one-off task — an operator's notice, an import's run — was never run."""
    import os
    import socket

    from tidings.lib.processes import pid_namespace, process_start_time
    from tidings.web.task_worker import requeue_orphaned_tasks, worker_name

    host = socket.gethostname()[:100]
    killed = _running_task(f"{host}/{_dead_pid()}/12345/{pid_namespace()}/abc")
    alive = _running_task(worker_name("me"))  # this very process
    pid = os.getpid()
    assert worker_name("me") == f"{host}/{pid}/{process_start_time(pid)}/{pid_namespace()}/me"
    unknown = _running_task("a1b2c3d4e5")  # db_worker's own random name: nothing to go by

    assert requeue_orphaned_tasks() == 1

    states = {row.pk: row.status for row in DBTaskResult.objects.all()}
    assert states == {
        killed.pk: TaskResultStatus.READY,
        alive.pk: TaskResultStatus.RUNNING,
        unknown.pk: TaskResultStatus.RUNNING,
    }
    assert DBTaskResult.objects.get(pk=killed.pk).started_at is None
    assert "which is gone: queued again" in caplog.text
    assert requeue_orphaned_tasks() == 0  # once


def test_a_task_of_a_worker_on_another_machine_is_queued_again_once_its_heartbeat_lapses():
    from datetime import timedelta

    from django.utils import timezone

    from tidings.campaigns.models import DeliveryWorker
    from tidings.web.task_worker import requeue_orphaned_tasks

    beat = DeliveryWorker.objects.create(
        id="w1", host="mail-2.example", pid=4242, process_started="777", last_seen=timezone.now()
    )
    task = _running_task("mail-2.example/4242/777/xyz")
    silent = _running_task("mail-3.example/99/1/xyz")  # no heartbeat of its own: left alone

    assert requeue_orphaned_tasks() == 0
    beat.last_seen = timezone.now() - timedelta(minutes=5)
    beat.save()
    assert requeue_orphaned_tasks() == 1

    assert DBTaskResult.objects.get(pk=task.pk).status == TaskResultStatus.READY
    assert DBTaskResult.objects.get(pk=silent.pk).status == TaskResultStatus.RUNNING


def test_a_task_of_a_worker_named_before_pid_namespaces_is_still_taken_back_on_its_host():
    """Tasks claimed by an older version (``host/pid/start/suffix``) when it was killed."""
    import socket

    from tidings.web.task_worker import requeue_orphaned_tasks

    host = socket.gethostname()[:100]
    killed = _running_task(f"{host}/{_dead_pid()}/12345/abc")
    assert requeue_orphaned_tasks() == 1
    assert DBTaskResult.objects.get(pk=killed.pk).status == TaskResultStatus.READY


def test_a_namesake_container_s_live_task_is_left_alone_until_its_heartbeat_lapses():
    """Two containers with the same hostname and their own pids: a task running in the other
    one as pid N was queued again (and run twice) when pid N was not alive here."""
    import socket
    from datetime import timedelta

    from django.utils import timezone

    from tidings.campaigns.models import DeliveryWorker
    from tidings.web.task_worker import requeue_orphaned_tasks

    host = socket.gethostname()[:100]
    other = "22222222-2222-2222-2222-222222222222:4026532211"
    pid = _dead_pid()  # not alive here: which says nothing about the other container
    beat = DeliveryWorker.objects.create(
        id="twin",
        host=host,
        pid=pid,
        process_started="777",
        pid_namespace=other,
        sends_mail=False,
        last_seen=timezone.now(),
    )
    task = _running_task(f"{host}/{pid}/777/{other}/xyz")

    assert requeue_orphaned_tasks() == 0
    beat.last_seen = timezone.now() - timedelta(minutes=5)
    beat.save()
    assert requeue_orphaned_tasks() == 1
    assert DBTaskResult.objects.get(pk=task.pk).status == TaskResultStatus.READY


@pytest.mark.django_db(transaction=True)
def test_a_worker_without_delivery_keeps_a_heartbeat_while_it_runs_tasks(monkeypatch):
    """``tidings worker --no-delivery`` on another machine kept no heartbeat: killed, its task
    stayed RUNNING for ever unless a worker on its own machine started."""
    from django.core.management import call_command
    from django_tasks_db.management.commands import db_worker

    from tidings.campaigns.models import DeliveryWorker
    from tidings.campaigns.queue import live_workers
    from tidings.web.task_worker import _parse_worker_name

    seen = []

    def run(self):
        host, pid, started, namespace = _parse_worker_name(self.worker_id)
        seen.append(
            (
                list(
                    DeliveryWorker.objects.filter(
                        host=host,
                        pid=pid,
                        process_started=started,
                        pid_namespace=namespace,
                        stopped_at__isnull=True,
                    ).values_list("sends_mail", flat=True)
                ),
                live_workers(),
            )
        )

    monkeypatch.setattr(db_worker.Worker, "run", run)
    call_command("worker", "--no-scheduler", "--no-delivery", "--interval", "0")

    assert seen == [([False], 0)]  # its heartbeat, which is no delivery worker's
    assert DeliveryWorker.objects.get().stopped_at is not None  # a clean stop says so


def test_the_task_heartbeat_is_refreshed_and_registers_again_once_declared_gone(caplog):
    from datetime import timedelta

    from django.utils import timezone

    from tidings.campaigns.models import DeliveryWorker
    from tidings.web.task_worker import TaskHeartbeat

    heartbeat = TaskHeartbeat()
    heartbeat.worker_id = "t1"
    DeliveryWorker.objects.create(
        id="t1", host="h", pid=1, sends_mail=False, last_seen=timezone.now() - timedelta(seconds=9)
    )
    heartbeat.beat()
    assert DeliveryWorker.objects.get(pk="t1").last_seen > timezone.now() - timedelta(seconds=1)

    DeliveryWorker.objects.filter(pk="t1").update(stopped_at=timezone.now())  # recovered
    heartbeat.beat()
    assert heartbeat.worker_id != "t1"
    assert DeliveryWorker.objects.get(pk=heartbeat.worker_id).sends_mail is False
    assert "declared gone" in caplog.text
