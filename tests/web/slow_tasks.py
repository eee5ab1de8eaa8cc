"""A task that runs until told to stop, for tests/web/test_worker_signals.py's worker process."""

from __future__ import annotations

import time
from pathlib import Path

from django.tasks import task


@task
def wait_for_file(started: str, release: str) -> str:
    Path(started).write_text("started")
    deadline = time.monotonic() + 60
    while not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "done"


RUNNING_WORKER: list = []  # the GracefulWorker running interrupted_by_a_second_signal


@task
def interrupted_by_a_second_signal() -> str:
    """Stops as a second SIGTERM stops the task in hand (``GracefulWorker.shutdown``)."""
    from tidings.web.task_worker import StopNow

    RUNNING_WORKER[0].interrupted = True
    raise StopNow()
