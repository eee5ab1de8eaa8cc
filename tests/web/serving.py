"""Helpers for tests that run `tidings serve` as a real process."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(server: subprocess.Popen, port: int, seconds: float = 120) -> None:
    """Until `tidings serve` answers (a 404 for a page that does not exist); fails if it
    stopped or did not answer in time."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page", timeout=5)
        except urllib.error.HTTPError as answer:
            if answer.code == 404:
                return
        except OSError:
            pass
        assert server.poll() is None, server.communicate()
        assert time.monotonic() < deadline, "tidings serve did not answer"
        time.sleep(0.3)
