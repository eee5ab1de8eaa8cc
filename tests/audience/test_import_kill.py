"""`tidings import contacts` killed with SIGKILL in the middle of its file, as a real process:
its import shows as interrupted (not "running" for ever) with the command that resumes it, and
resuming finishes the same import, keeping every row written and losing none."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
ROWS = 50_000  # ~9.7 MB: over the parallel writers' threshold on PostgreSQL
PADDING = "x" * 160

# The tests that kill processes run one after another in one xdist process (--dist loadgroup):
# two at once on two cores starve each other's workers past their timing windows.
pytestmark = [
    pytest.mark.django_db(transaction=True),  # PostgreSQL's processes share its database
    pytest.mark.xdist_group("kill"),
]


@pytest.fixture
def installation(request, tmp_path) -> dict[str, str]:
    """The environment of `tidings` processes sharing a database this test can read: PostgreSQL's
    test database (committed: transactional_db), or a migrated SQLite data directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TIDINGS_", "DJANGO_")) and k not in {"DATABASE_URL", "SECRET_KEY"}
    }
    env.update(PYTHONPATH=str(ROOT), TIDINGS_LOG_LEVEL="WARNING")
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
        url = f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
        env.update(
            DATABASE_URL=url,
            TIDINGS_DATA_DIR=str(tmp_path / "data"),
            SECRET_KEY="import-kill-test-" + "k" * 40,
        )
    else:
        data_dir = request.getfixturevalue("fresh_installation")
        env.update(TIDINGS_DATA_DIR=str(data_dir))
    return env


def _fixture(env: dict[str, str], *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.audience.import_kill_fixture", *args],
        env={**env, "DJANGO_SETTINGS_MODULE": "tidings.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def _rows_read(env: dict[str, str]) -> int:
    """Rows the running import has committed (0 before it starts), read without Django's ORM
    so that the test's own connection sees the other process's commits."""
    query = "SELECT rows_read FROM audience_import WHERE status = 'running'"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(query)
            found = cursor.fetchone()
        return found[0] if found else 0
    database = Path(env["TIDINGS_DATA_DIR"]) / "tidings.sqlite3"
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=20)
    try:
        found = db.execute(query).fetchone()
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()
    return found[0] if found else 0


def test_an_import_killed_mid_file_shows_as_interrupted_and_resumes_without_loss(
    installation, tmp_path
):
    env = installation
    _fixture(env, "list", "Product news")
    csv = tmp_path / "people.csv"
    with csv.open("w") as fp:
        fp.write("email,name\n")
        fp.writelines(f"reader{n}@example.org,Reader {n} {PADDING}\n" for n in range(ROWS))
    command = [sys.executable, "-m", "tidings.cli", "import", "contacts"]
    importing = subprocess.Popen(
        [*command, "people.csv", "--list", "Product news", "--consent-source", "2025 fair"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while _rows_read(env) == 0:
            assert importing.poll() is None, importing.stderr.read() if importing.stderr else ""
            assert time.monotonic() < deadline, "the import never committed a batch"
            time.sleep(0.02)
        importing.send_signal(signal.SIGKILL)
        importing.wait(timeout=30)
    finally:
        if importing.poll() is None:
            importing.kill()
            importing.wait()
    assert importing.returncode == -signal.SIGKILL

    killed = _fixture(env, "state")
    assert 0 < killed["counts"]["rows_read"] < ROWS, "killed mid-file"
    assert killed["status"] == "running"  # the process had no chance to say otherwise...
    assert killed["status_text"] == "Interrupted"  # ...but it is seen to be gone
    assert killed["resume_command"] == f"tidings import contacts people.csv --resume {killed['id']}"
    written = killed["contacts"]
    assert 0 < written < ROWS

    resumed = subprocess.run(
        [*command, "people.csv", "--resume", str(killed["id"])],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    done = _fixture(env, "state")
    assert done["id"] == killed["id"] and done["imports"] == 1  # the same import, finished
    assert done["status"] == "finished" and done["status_text"] == "Finished"
    assert done["contacts"] == ROWS  # every row: those written before the kill, and the rest
    assert done["subscriptions"] == ROWS
    assert done["consent_events"] == ROWS  # none written twice
    # The counts are those of one uninterrupted run: the rows the killed run wrote count as new.
    assert done["counts"]["rows_read"] == ROWS
    assert done["counts"]["created"] == ROWS
    assert done["counts"]["subscribed"] == ROWS
    assert done["counts"]["unchanged"] == 0
