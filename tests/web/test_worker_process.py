"""`tidings serve --with-worker`: the background worker is started again when it dies — it was
started once, and after a crash or a kill nothing was sent until the server restarted.  (The
whole path, with a real serve and a mail sent by the new worker, is in test_demo_address.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from tidings.web import worker_keeper

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def wait_until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_worker_is_started_again_and_stopping_ends_it():
    stopping = threading.Event()
    current: list[subprocess.Popen] = []
    keeper = threading.Thread(target=worker_keeper.keep, args=(SLEEPER, stopping, current))
    keeper.start()
    try:
        assert wait_until(lambda: bool(current))
        first = current[0]
        os.kill(first.pid, signal.SIGKILL)
        assert wait_until(lambda: current[0] is not first)  # after about a second
        assert current[0].poll() is None  # the new one runs
    finally:
        stopping.set()
        current[0].terminate()
        keeper.join(timeout=10)
    assert not keeper.is_alive()  # a stop asked for is not a death to recover from
    assert current[0].poll() is not None


def test_the_keeper_passes_sigterm_on_and_starts_nothing_more(tmp_path):
    """serve's shutdown sends the keeper SIGTERM: the worker gets it and the keeper ends."""
    script = tmp_path / "keeper.py"
    script.write_text(
        "import sys\n"
        "from tidings.web import worker_keeper\n"
        f"worker_keeper.WORKER = {SLEEPER!r}\n"
        "sys.exit(worker_keeper.main())\n"
    )
    keeper = subprocess.Popen([sys.executable, str(script)])
    try:
        time.sleep(1.5)
        assert keeper.poll() is None
        keeper.send_signal(signal.SIGTERM)
        assert keeper.wait(timeout=10) == 0
    finally:
        if keeper.poll() is None:
            keeper.kill()
