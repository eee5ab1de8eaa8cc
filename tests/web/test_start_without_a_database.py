"""`tidings serve` and `tidings worker` refuse to start on a database they cannot use: one line,
exit status 1, at once.

Before, a wrong DATABASE_URL (or a database `tidings migrate` had not set up) went unnoticed at
start: serve printed "tidings is serving on …" and answered every page with an error, and the
worker logged a traceback from each of its threads before it stopped."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.campaigns.delivery_helpers import free_port
from tests.ops.test_backup_restore import ROOT, env_for

pytestmark = pytest.mark.xdist_group("start-up")


def _start(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [sys.executable, "-m", "tidings.cli", *args],
            env=env_for(tmp_path / "var", **env),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired as exc:  # it started and kept running
        pytest.fail(f"`tidings {' '.join(args)}` did not stop: {exc.stdout!r} {exc.stderr!r}")


def test_the_worker_stops_in_one_line_when_the_database_cannot_be_reached(tmp_path):
    port = free_port()  # nothing listens there
    url = f"postgres://tidings:s3cret-pw@127.0.0.1:{port}/tidings"

    result = _start(tmp_path, "worker", DATABASE_URL=url)

    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "tidings worker: cannot connect to the database (postgresql): connection failed: "
        f'connection to server at "127.0.0.1", port {port} failed: Connection refused'
    ]
    assert "s3cret-pw" not in result.stdout + result.stderr


def test_serve_stops_in_one_line_on_a_database_not_set_up(tmp_path):
    # A fresh data directory: SQLite, no tables (`tidings migrate` not run).
    result = _start(tmp_path, "serve", "--port", str(free_port()))

    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "tidings serve: the database is not set up for this version ("
    )
    assert result.stderr.splitlines()[-1].endswith("not applied): run `tidings migrate` first")
    assert "Traceback" not in result.stderr
    assert "tidings is serving" not in result.stdout
