"""Screening's engine is built in the background when a web process starts (tidings/wsgi.py),
and a server that forks its workers after importing the application must not inherit a
warm-up half done: the child would wait for ever on a lock whose holder it does not have."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tidings.policy import screening


@pytest.fixture
def slow_engine(monkeypatch):
    """An engine whose build, in the warm-up thread only, waits until the test lets it go."""
    release = threading.Event()
    started = threading.Event()

    class Engine:
        def __init__(self, *args):
            if threading.current_thread().name == "screening-warm-up":
                started.set()
                release.wait(30)

    monkeypatch.setattr(screening, "_Engine", Engine)
    screening.forget_screener()
    yield started, release
    release.set()
    screening.forget_screener()


def test_importing_the_wsgi_application_starts_building_the_engine(slow_engine):
    import importlib

    import tidings.wsgi

    started, _release = slow_engine
    importlib.reload(tidings.wsgi)
    assert started.wait(10)
    assert not screening.engine_ready()  # still building, in the background


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, on purpose
def test_a_worker_forked_during_the_warm_up_builds_its_own_engine(slow_engine):
    started, release = slow_engine
    screening.warm_up()
    assert started.wait(10)  # the warm-up thread holds the engine's lock now
    pid = os.fork()
    if pid == 0:  # the forked worker: no warm-up thread here, and the lock was held at the fork
        signal.alarm(10)  # waiting on the inherited lock would end here, with SIGALRM
        screening._screener()._get_engine()
        os._exit(0 if screening.engine_ready() else 1)
    try:
        deadline = time.monotonic() + 60
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked worker did not build its engine within a minute")
        assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        release.set()
