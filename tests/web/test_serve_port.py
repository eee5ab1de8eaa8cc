"""`tidings serve` on a port another server holds stops with one line, instead of sharing it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tidings.web.management.commands.serve import port_in_use


def listening_like_granian() -> socket.socket:
    """A listener on a free port with SO_REUSEPORT, as granian binds."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_serve_refuses_a_port_another_server_holds(tmp_path):
    """granian binds with SO_REUSEPORT, so a second `tidings serve` on the same port started
    without a word and the kernel shared the connections between the two: an API client saw
    its token work and fail every other request (found running two demos on one port)."""
    other = listening_like_granian()
    port = other.getsockname()[1]
    env = {**os.environ, "TIDINGS_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    try:
        server = subprocess.Popen(
            [sys.executable, "-m", "tidings", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            _, err = server.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.communicate()
            raise AssertionError("tidings serve started on a port another server holds") from None
    finally:
        other.close()
    assert server.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in err
    assert "Traceback" not in err


def test_a_free_port_is_taken_and_a_used_one_named():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert port_in_use("127.0.0.1", free) == ""
    other = listening_like_granian()
    try:
        assert "already in use" in port_in_use("127.0.0.1", other.getsockname()[1])
    finally:
        other.close()
