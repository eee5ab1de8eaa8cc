"""`tidings serve` ends after Ctrl-C even when a web process does not stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.web.serving import free_port, wait_until_serving
from tidings.web.management.commands.serve import WEB_STOP_SECONDS


def _children(pid: int) -> list[int]:
    return [int(n) for n in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_web_process_that_does_not_stop_is_killed_and_serve_ends(tmp_path):
    """granian waited for ever for a web process that did not stop (seen once in CI: serve
    still running a minute after Ctrl-C), and systemd would have waited with it.  A web process
    frozen here (SIGSTOP: it cannot finish anything) is killed after WEB_STOP_SECONDS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.pop("DATABASE_URL", None)
    env.update(TIDINGS_DATA_DIR=str(tmp_path))
    migrate = subprocess.run(
        [sys.executable, "-m", "tidings", "migrate", "-v0"], env=env, timeout=300
    )
    assert migrate.returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    frozen: list[int] = []
    try:
        wait_until_serving(server, port)
        frozen = _children(server.pid)
        assert frozen
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=WEB_STOP_SECONDS + 60)
        assert time.monotonic() - started >= WEB_STOP_SECONDS - 1  # waited for it first
    finally:
        for pid in frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
