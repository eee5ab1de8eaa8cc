"""Killing real processes that advance a welcome step for a few hundred people, with SIGKILL,
at random moments, and restarting them: nobody is lost and no step runs twice (each step is one
transaction keyed (enrolment, seq); a killed worker's claims lapse after the lease)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 200
KILLS = 5

# The tests that kill processes run one after another in one xdist process (--dist loadgroup):
# two at once on two cores starve each other's workers past their timing windows.
pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
        reason="the SQLite run covers it",
    ),
    pytest.mark.xdist_group("kill"),
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'journeys.sqlite3'}",
        DJANGO_SETTINGS_MODULE="tests.campaigns.worker_settings",
        TIDINGS_DATA_DIR=str(tmp_path),
        TIDINGS_JOURNEY_LEASE_SECONDS="1",
        PYTHONPATH=str(ROOT),
    )
    return env


def _run(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _fixture(env: dict[str, str], *args: str) -> dict:
    return json.loads(_run(env, "-m", "tests.journeys.kill_fixture", *args).splitlines()[-1])


def _worker(env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.journeys.kill_fixture", "advance"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "advancing"  # Django is up
    return process


def test_killing_the_journey_worker_loses_nobody_and_repeats_no_step(tmp_path):
    rng = random.Random(5)
    env = _env(tmp_path)
    _run(env, "-m", "tidings.cli", "migrate", "--verbosity", "0")
    _fixture(env, "setup", str(PEOPLE))
    kills = 0
    progress = []
    for _ in range(KILLS):
        worker = _worker(env)
        # Kill after a few batches, however fast the machine is, and at a random moment within
        # the next one.
        assert worker.stdout is not None
        for _ in range(rng.randint(2, 6)):
            if not worker.stdout.readline():
                break
        time.sleep(rng.uniform(0, 0.05))
        if worker.poll() is not None:
            break
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
        progress.append(_fixture(env, "report")["mail"])
    # The last one runs to the end (after the dead workers' leases lapse).
    last = _worker(env)
    assert last.wait(timeout=240) == 0
    report = _fixture(env, "report")

    assert kills >= 3, f"finished before the kills: {progress}"
    assert any(0 < sum(p.values()) < PEOPLE for p in progress), progress  # killed mid-way
    assert report["people"] == PEOPLE
    assert report["mail"] == {"1": PEOPLE}  # everybody got step 1, exactly once
    assert report["sent_steps"] == PEOPLE
    assert report["at"] == {"tips": PEOPLE}  # everybody waits for step 2
