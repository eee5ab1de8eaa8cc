"""`tidings worker` and stop signals, as systemd sends them: a real worker process, a real task.

The first SIGTERM lets the task in hand finish; a second one (systemd's default KillMode sends
SIGTERM to every process of a unit, so `tidings serve --with-worker`'s worker gets one from
systemd and one from its keeper) stops at once, and loses nothing: the task goes back to the
queue instead of being recorded as failed, and the delivery engine hands its rows back.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.ops.test_backup_restore import ROOT, env_for


def _task_row(database: Path) -> tuple[str, str]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return connection.execute(
            "SELECT status, exception_class_path FROM django_tasks_database_dbtaskresult"
        ).fetchone()
    finally:
        connection.close()


def _start_worker_on_a_running_task(data_dir: Path, tmp_path: Path):
    started, release = tmp_path / "started", tmp_path / "release"
    subprocess.run(
        [sys.executable, "-m", "tests.web.enqueue_slow_task", str(started), str(release)],
        env=env_for(data_dir, DJANGO_SETTINGS_MODULE="tidings.settings"),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "tidings.cli", "worker", "--no-scheduler", "--interval", "0.1"],
        env=env_for(data_dir),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Bounds for a hang, not speeds: a worker's start-up took two minutes at a load average of 16.
    deadline = time.monotonic() + 300
    while not started.exists():
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    return worker, release


def test_one_sigterm_lets_the_task_in_hand_finish(fresh_installation, tmp_path):
    worker, release = _start_worker_on_a_running_task(fresh_installation, tmp_path)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert worker.poll() is None  # still finishing its task
    release.touch()

    worker.wait(timeout=300)

    assert worker.returncode == 0
    assert _task_row(fresh_installation / "tidings.sqlite3")[0] == "SUCCESSFUL"


def test_a_second_sigterm_stops_at_once_and_puts_the_task_back_in_the_queue(
    fresh_installation, tmp_path
):
    worker, _ = _start_worker_on_a_running_task(fresh_installation, tmp_path)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    worker.send_signal(signal.SIGTERM)

    _, err = worker.communicate(timeout=300)

    assert "interrupted and queued again" in err, err[-3000:]
    # Not first logged as a failure (an ERROR line with a StopNow traceback): nothing failed.
    assert "state=FAILED" not in err, err[-3000:]
    assert "StopNow" not in err and "Traceback" not in err, err[-3000:]
    assert "claimed rows returned to the queue" in err, err[-3000:]
    status, exception = _task_row(fresh_installation / "tidings.sqlite3")
    # Runs again on the next worker; not FAILED, and not SUCCESSFUL: the worker did not wait for
    # the task, which never got its release file (it would have ended by itself after 60 s).
    assert (status, exception) == ("READY", "")
    connection = sqlite3.connect(fresh_installation / "tidings.sqlite3")
    workers = connection.execute(
        "SELECT count(*) FROM campaigns_deliveryworker WHERE stopped_at IS NULL"
    ).fetchone()[0]
    connection.close()
    assert workers == 0  # the delivery engine said it stopped, and handed its rows back


def test_a_task_a_killed_worker_left_running_runs_on_the_next_worker(fresh_installation, tmp_path):
    """kill -9 left the task RUNNING in the database for ever: the next worker never ran it."""
    worker, release = _start_worker_on_a_running_task(fresh_installation, tmp_path)
    worker.kill()
    worker.wait(timeout=60)
    assert _task_row(fresh_installation / "tidings.sqlite3")[0] == "RUNNING"
    release.touch()  # the task, run again, ends at once

    again = subprocess.run(
        [sys.executable, "-m", "tidings.cli", "worker", "--batch", "--no-delivery"],
        env=env_for(fresh_installation),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert again.returncode == 0, again.stderr[-3000:]
    assert "which is gone: queued again" in again.stderr, again.stderr[-3000:]
    assert _task_row(fresh_installation / "tidings.sqlite3")[0] == "SUCCESSFUL"
