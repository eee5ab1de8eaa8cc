"""Killing real ``tidings worker`` processes with SIGKILL, many times, while mail is going out.

Each test makes its own database (an SQLite file, or a PostgreSQL database beside the one the
tests use), a campaign of several hundred recipients and a real SMTP server (aiosmtpd) that
records every message it accepts.  The kills follow the campaign's progress, not the clock: the
k-th kill comes once about k × STEP messages have arrived (a seeded random few more), and only
when every worker has finished starting; each killed worker is restarted at once, and while it
starts the server holds back the survivors' messages past a limit, so however slow the machine,
all the kills land mid-campaign.  At the end: everybody got the message, nobody got more than
one copy except the messages a recovery reported as possibly sent twice, and those were logged;
every killed worker was found dead by its process being gone (not by waiting out its lease,
which is made longer than any of the test's waits).  The campaign is an A/B test: each person's
variant was fixed on their row when the queue was made, so every copy anybody got, first or
second, is the variant on their row.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings

from tests.campaigns.delivery_helpers import SmtpSink

# The tests that kill processes run one after another in one xdist process (--dist loadgroup):
# two at once on two cores starve each other's workers past their timing windows.
pytestmark = pytest.mark.xdist_group("kill")

ROOT = Path(__file__).resolve().parents[2]
TIDINGS = [sys.executable, "-m", "tidings.cli"]
RECIPIENTS = 800
WINDOW = 40  # rows a worker holds at once: the most a kill can send twice
KILLS = 6
STEP = RECIPIENTS // (KILLS + 2)  # messages between two kills: the last comes before 7/8
# Generous bounds for each wait, however loaded the machine: at a load average of 16 on two
# cores a worker's start-up alone took two minutes.  When quiet, each takes a second or two.
TIMEOUT = 300  # seconds
# Longer than any wait may take, so no row can come back by its lease lapsing (a killed worker's
# rows are recovered at the latest when its successor starts): every recovery must be the dead
# worker being noticed, which the log then says.
LEASE = 3 * TIMEOUT
# A held message waits for its answer while a worker restarts: the client must not give up.
TRANSPORTS = """[smtp]
url = "{url}"
rate = "50/s"
concurrency = 4
timeout = {timeout}
"""


def _env(database_url: str, data_dir: Path, sink: SmtpSink) -> dict[str, str]:
    transports = data_dir / "transports.toml"
    transports.write_text(TRANSPORTS.format(url=sink.url, timeout=2 * TIMEOUT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="tests.campaigns.worker_settings",
        TIDINGS_DATA_DIR=str(data_dir),
        TIDINGS_TRANSPORTS=str(transports),
        TIDINGS_DELIVERY_WINDOW=str(WINDOW),
        TIDINGS_DELIVERY_CHUNK=str(WINDOW // 2),
        TIDINGS_DELIVERY_LEASE_SECONDS=str(LEASE),
        PYTHONPATH=str(ROOT),
    )
    return env


def _run(env: dict[str, str], *args: str) -> str:
    # Migrating the fresh database took over five minutes at a load average of 16.
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _fixture(env: dict[str, str], *args: str) -> dict:
    return json.loads(_run(env, "-m", "tests.campaigns.worker_fixture", *args))


class Workers:
    """``tidings worker --delivery-only`` processes, their logs kept in files."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen] = []
        self.numbers: dict[int, int] = {}  # pid → number of its log file
        self.started = 0

    def start(self) -> subprocess.Popen:
        self.started += 1
        log = (self.logs / f"worker-{self.started}.log").open("w")
        process = subprocess.Popen(
            [*TIDINGS, "worker", "--delivery-only"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        self.numbers[process.pid] = self.started
        return process

    def kill(self, process: subprocess.Popen) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        self.processes.remove(process)

    def stop_all(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()

    def wait_until_sending(self, deadline: float) -> None:
        """Until each running worker has logged that its delivery engine started (by then it
        has returned the rows of any worker it found gone)."""
        logs = [self.logs / f"worker-{n}.log" for n in self.log_numbers()]
        while not all("delivery worker" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, (
                "a worker did not start:\n" + self.log_text()[-3000:]
            )
            time.sleep(0.05)

    def log_numbers(self) -> list[int]:
        return [self.numbers[p.pid] for p in self.processes]

    def log_text(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.logs.glob("worker-*.log")))


def _kill_and_restart(workers: Workers, sink: SmtpSink, rng: random.Random) -> list[int]:
    """SIGKILL a random worker KILLS times as the campaign goes on, restarting it each time;
    returns how many messages had arrived at each kill.

    The k-th kill waits until every worker has started and k × STEP messages (plus a random
    part of STEP) have arrived.  The server holds back messages past half a STEP further, so
    the survivors cannot finish the campaign while a restarted worker is still starting (on a
    loaded machine that alone can take ten seconds or more); the limit goes when the kills end."""
    arrived_at_kill = []
    for k in range(1, KILLS + 1):
        workers.wait_until_sending(time.monotonic() + TIMEOUT)
        target = k * STEP + rng.randrange(STEP // 2)
        sink.hold_after = target + STEP // 2
        assert sink.wait_for(target, TIMEOUT), "mail stopped going out"
        arrived_at_kill.append(len(sink.received))
        workers.kill(rng.choice(workers.processes))
        workers.start()
    workers.wait_until_sending(time.monotonic() + TIMEOUT)
    sink.hold_after = None
    return arrived_at_kill


def _wait_until_finished(env: dict[str, str], campaign: int, deadline: float) -> dict:
    while True:
        report = _fixture(env, "report", str(campaign))
        if report["status"] == "finished" or time.monotonic() > deadline:
            return report
        time.sleep(1.0)


def _exercise(database_url: str, tmp_path: Path, worker_count: int, seed: int) -> None:
    rng = random.Random(seed)
    with SmtpSink() as sink:
        env = _env(database_url, tmp_path, sink)
        _run(env, "-m", "tidings.cli", "migrate", "--verbosity", "0")
        setup = _fixture(env, "setup-ab", str(RECIPIENTS))
        workers = Workers(env, tmp_path)
        try:
            for _ in range(worker_count):
                workers.start()
            arrived_at_kill = _kill_and_restart(workers, sink, rng)
            report = _wait_until_finished(env, setup["campaign"], time.monotonic() + TIMEOUT)
        finally:
            workers.stop_all()
        log = workers.log_text()

    copies = Counter(r.recipient for r in sink.received)
    duplicates = sum(n - 1 for n in copies.values())
    logged = [int(n) for n in re.findall(r"recovered (\d+) rows from worker", log)]
    why_gone = re.findall(
        r"(?:recovered \d+ rows from worker|is gone).*?\((its process[^)]*|no heartbeat[^)]*)\)",
        log,
    )

    # Every kill landed mid-campaign, with mail arriving.
    assert len(arrived_at_kill) == KILLS
    assert arrived_at_kill == sorted(arrived_at_kill) and arrived_at_kill[-1] < RECIPIENTS
    assert report["status"] == "finished", (report, log[-3000:])
    assert report["rows"] == {"sent": RECIPIENTS}
    assert set(copies) == set(setup["emails"])  # nobody lost
    # Nobody got a second copy except rows a recovery returned as possibly sent already...
    assert duplicates <= sum(report["recovered"]) == sum(logged)
    # ... and no kill sent more than a worker's window twice.
    assert max(report["recovered"], default=0) <= WINDOW
    # Exactly one variant each, also across the kills: the one fixed on their row.
    assert set(setup["subjects"].values()) == {"Variant A", "Variant B"}
    for received in sink.received:
        assert received.message["Subject"] == setup["subjects"][received.recipient]
    # Each killed worker was found dead because its process was gone (a restarted worker, or
    # the survivor, looked): none waited out its lease, and no row came back by a lapsed lease.
    assert len(report["recovered"]) == KILLS, log[-3000:]
    assert why_gone == ["its process is gone"] * KILLS, log[-3000:]
    assert "whose lease lapsed" not in log
    assert sum(report["recovered"]) > 0  # and the kills caught rows in flight
    # A copy sent twice is the same message: same Message-ID, so receivers can drop it.
    ids_by_recipient: dict[str, set[str]] = {}
    for received in sink.received:
        ids_by_recipient.setdefault(received.recipient, set()).add(received.message_id)
    assert all(len(ids) == 1 for ids in ids_by_recipient.values())


def _own_postgres_database(name: str) -> str | None:
    url = settings.DATABASES["default"]
    if url["ENGINE"] != "django.db.backends.postgresql":
        return None
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
    reason="the SQLite run covers SQLite",
)
def test_a_worker_killed_at_random_moments_on_sqlite_loses_nobody_and_duplicates_at_most_its_window(
    tmp_path,
):
    _exercise(f"sqlite:///{tmp_path / 'kill.sqlite3'}", tmp_path, worker_count=1, seed=7)


@pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
    reason="needs PostgreSQL (DATABASE_URL)",
)
def test_two_workers_killed_at_random_moments_on_postgresql_lose_nobody_and_double_send_little(
    tmp_path,
):
    import psycopg

    name = f"kill_{os.getpid()}_{int(time.time())}"
    url = _own_postgres_database(name)
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        _exercise(url, tmp_path, worker_count=2, seed=11)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
