"""`tidings serve --with-worker`: the background worker is started again when it dies — it was
started once, and after a crash or a kill nothing was sent until the server restarted."""

from __future__ import annotations

import os
import signal
import sys
import time

from tidings.web.worker_process import SupervisedProcess

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_worker_is_started_again_and_stop_ends_it():
    supervised = SupervisedProcess(SLEEPER, restart_after=0.2, poll=0.05)
    try:
        first = supervised.process
        os.kill(first.pid, signal.SIGKILL)
        assert wait_until(lambda: supervised.process is not first)
        assert supervised.restarts == 1
        assert supervised.process.poll() is None  # the new one runs
    finally:
        supervised.stop(timeout=5)
    assert supervised.process.poll() is not None
    time.sleep(0.3)
    assert supervised.restarts == 1  # stopping is not a death to recover from
