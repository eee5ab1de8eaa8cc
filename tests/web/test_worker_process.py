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


COUNTER = (
    "import signal, sys, time\n"
    "log = open(sys.argv[1], 'a', buffering=1)\n"
    "def got(n, f): log.write(signal.Signals(n).name + '\\n')\n"
    "signal.signal(signal.SIGTERM, got); signal.signal(signal.SIGINT, got)\n"
    "log.write('ready\\n')\n"
    "for _ in range(40):\n"
    "    time.sleep(0.1)\n"
)


def test_a_signal_to_the_whole_process_group_reaches_the_worker_once(tmp_path):
    """Ctrl-C on `tidings serve --with-worker`, or a supervisor stopping its process group: the
    worker got the signal itself, again from the keeper, and once more when serve stopped the
    keeper — and django-tasks-db's worker takes a second signal as "stop now", abandoning its task
    and the mail in hand. It now gets one SIGTERM, from the keeper only."""
    for signals in ([signal.SIGTERM], [signal.SIGINT, signal.SIGTERM]):
        received = tmp_path / f"received-{len(signals)}.txt"
        script = tmp_path / "keeper.py"
        script.write_text(
            "import sys\n"
            "from tidings.web import worker_keeper\n"
            f"worker_keeper.WORKER = {[sys.executable, '-c', COUNTER, str(received)]!r}\n"
            "sys.exit(worker_keeper.main())\n"
        )
        keeper = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
        try:
            assert wait_until(lambda path=received: path.exists() and "ready" in path.read_text())
            os.killpg(keeper.pid, signals[0])  # the terminal's Ctrl-C / the supervisor's stop
            time.sleep(0.3)
            for later in signals[1:]:  # serve, after granian stopped, stops the keeper
                keeper.send_signal(later)
            assert keeper.wait(timeout=15) == 0
        finally:
            if keeper.poll() is None:
                keeper.kill()
        assert received.read_text().split() == ["ready", "SIGTERM"], signals
