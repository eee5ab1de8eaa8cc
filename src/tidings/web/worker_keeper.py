"""`tidings serve --with-worker`'s background worker, started again when it stops.

One process serving pages and one worker is how the demo and a small installation run.  If the
worker dies (killed, out of memory, a crash), pages keep working while no mail goes out and no
background job runs — silently.  So serve runs this small keeper process (``python -m
tidings.web.worker_keeper``), which runs ``tidings worker`` and starts a new one when it stops:
after 1 s, then twice as long after each stop that came within a minute of its start (at most
60 s), so that a worker failing at start-up does not spin.  Installations that run workers under
systemd (deploy/) have systemd do this instead.

A process of its own, not a thread in serve: granian forks its web workers from serve's process,
and with a thread there waiting on a child, granian's shutdown hung.  Hand-written rather than a
process supervisor (supervisord, circus): it is one child of one command, and a supervisor would
be another program to install and configure for the demo.

Signals: the worker runs in a session of its own, and the keeper passes it exactly one SIGTERM,
whichever of SIGTERM and SIGINT arrives first, however often: a signal to the whole process group
(Ctrl-C in a terminal, ``kill -TERM -PGID``, a supervisor stopping its process group) reached the
worker directly *and* through the keeper (and again when serve, shutting down, stopped the
keeper), and a second signal makes the worker stop at once, abandoning its task and the mail it
was sending.  The worker then finishes its task and exits; the keeper waits for it and starts no
new one.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time

logger = logging.getLogger("tidings.web.worker_keeper")

QUICK_STOP_SECONDS = 60.0  # a worker that ran this long before stopping is restarted after 1 s
LONGEST_WAIT_SECONDS = 60.0
WORKER = [sys.executable, "-m", "tidings", "worker"]


def keep(command: list[str], stopping: threading.Event, current: list) -> None:
    wait = 1.0
    while not stopping.is_set():
        # A session of its own: signals to serve's process group reach it only through us.
        current[:] = [subprocess.Popen(command, start_new_session=True)]  # noqa: S603
        started = time.monotonic()
        code = current[0].wait()
        if stopping.is_set():
            return
        wait = 1.0 if time.monotonic() - started >= QUICK_STOP_SECONDS else wait
        logger.warning(
            "the background worker stopped (exit code %s): starting it again in %.0f s", code, wait
        )
        if stopping.wait(wait):
            return
        wait = min(wait * 2, LONGEST_WAIT_SECONDS)


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stopping = threading.Event()
    current: list[subprocess.Popen] = []

    def on_signal(_number, _frame):
        first = not stopping.is_set()
        stopping.set()
        if first and current and current[0].poll() is None:
            current[0].send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    keep(WORKER, stopping, current)
    return 0


if __name__ == "__main__":
    sys.exit(main())
