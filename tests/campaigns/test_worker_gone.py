"""When is a worker's process gone?  One rule (``queue.workers.worker_gone``) for the delivery
rows a vanished worker held and for the background task it was running.

Its pids are checked only where they mean the same process: the same pid namespace on the same
boot of the same kernel.  A hostname does not say so: two containers given the same
``--hostname`` (or a pod restarted under its name) each have pid 7, and each took the other's
live work when its own pid 7 was a different process.  Elsewhere, its heartbeat decides.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tidings.campaigns.queue import workers
from tidings.campaigns.queue.workers import worker_gone
from tidings.lib.processes import pid_namespace, process_start_time, this_host

LEASE = timedelta(seconds=30)
NOW = timezone.now()
FRESH = NOW - timedelta(seconds=5)
LAPSED = NOW - timedelta(seconds=31)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _me() -> tuple[int, str]:
    pid = os.getpid()
    return pid, process_start_time(pid)


def gone(host, pid, started, last_seen, *, namespace="") -> str:
    return worker_gone(host, pid, started, last_seen, NOW, namespace=namespace, lease=LEASE)


def test_this_process_names_its_pid_namespace_and_boot():
    namespace = pid_namespace()
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert namespace == f"{boot}:{Path('/proc/self/ns/pid').stat().st_ino}"
    assert len(namespace) <= 64  # DeliveryWorker.pid_namespace


def test_in_the_same_pid_namespace_the_pid_decides_whatever_the_heartbeat():
    pid, started = _me()
    here = pid_namespace()
    assert gone(this_host(), pid, started, LAPSED, namespace=here) == ""  # alive, if silent
    assert gone(this_host(), _dead_pid(), "1", FRESH, namespace=here) == "its process is gone"
    # The pid given to a later process: another start time.
    assert gone(this_host(), pid, "1", FRESH, namespace=here) == "its process is gone"
    # The namespace, not the name, says where the pids are: a renamed host is still this one.
    assert gone("renamed", _dead_pid(), "1", FRESH, namespace=here) == "its process is gone"


def test_a_namesake_container_is_judged_by_its_heartbeat_not_by_our_pids():
    """Same hostname, another pid namespace: its pid 7 is none of ours.  Its live work was
    taken (our pid 7 was another process, or none) and ran twice."""
    other = "00000000-0000-0000-0000-000000000000:4026531836"
    host = this_host()
    assert gone(host, _dead_pid(), "1", FRESH, namespace=other) == ""
    pid, started = _me()
    assert gone(host, pid, "1", FRESH, namespace=other) == ""
    assert gone(host, _dead_pid(), "1", LAPSED, namespace=other) == "no heartbeat for over 30 s"
    # And our live pid in it proves nothing either: its heartbeat lapsed, it is gone.
    assert gone(host, pid, started, LAPSED, namespace=other) == "no heartbeat for over 30 s"


def test_another_host_is_judged_by_its_heartbeat_and_one_without_is_never_known_gone():
    other = "11111111-1111-1111-1111-111111111111:4026531836"
    assert gone("mail-2.example", 4242, "7", FRESH, namespace=other) == ""
    assert gone("mail-2.example", 4242, "7", LAPSED, namespace=other) != ""
    assert gone("mail-2.example", 4242, "7", None, namespace=other) == ""
    assert gone("mail-2.example", 4242, "7", LAPSED) != ""  # an older worker's row


def test_a_row_from_before_namespaces_were_recorded_uses_the_host_name():
    """Rows written by an older version (no namespace): the same host name is taken to mean the
    same pids, as it was."""
    pid, started = _me()
    assert gone(this_host(), pid, started, LAPSED) == ""
    assert gone(this_host(), _dead_pid(), "1", FRESH) == "its process is gone"
    assert gone("elsewhere", _dead_pid(), "1", FRESH) == ""


def test_where_proc_says_nothing_the_host_name_is_all_there_is(monkeypatch):
    monkeypatch.setattr(workers, "pid_namespace", lambda: "")
    pid, _ = _me()
    assert gone(this_host(), _dead_pid(), "", FRESH) == "its process is gone"
    assert gone(this_host(), pid, "", FRESH) == ""
    # A row that did record one is from somewhere we cannot look into.
    assert gone(this_host(), _dead_pid(), "1", FRESH, namespace="x:1") == ""


@pytest.mark.django_db
def test_registered_workers_record_their_pid_namespace():
    worker = workers.register_worker()
    assert (worker.host, worker.pid_namespace) == (socket.gethostname()[:100], pid_namespace())


@pytest.mark.django_db
def test_recovery_leaves_a_live_namesake_container_s_delivery_rows_alone():
    """A delivery worker in another container of the same name, whose pid is not alive here:
    its rows were taken back while it was sending them (sent twice)."""
    from tidings.campaigns.models import DeliveryWorker

    twin = DeliveryWorker.objects.create(
        id="twin",
        host=this_host(),
        pid=_dead_pid(),
        process_started="1",
        pid_namespace="33333333-3333-3333-3333-333333333333:4026532299",
        last_seen=timezone.now(),
    )
    crashed = DeliveryWorker.objects.create(
        id="crashed",
        host="renamed",
        pid=_dead_pid(),
        process_started="1",
        pid_namespace=pid_namespace(),
        last_seen=timezone.now(),
    )
    workers.recover_abandoned("me")
    twin.refresh_from_db()
    crashed.refresh_from_db()
    assert twin.stopped_at is None
    assert crashed.recovered_at is not None  # ours, whatever its name says


def test_a_killed_worker_its_parent_has_not_reaped_yet_is_gone():
    """A zombie keeps its pid and start time in /proc until its parent waits for it (a
    supervisor that is slow to, or none in a container whose pid 1 reaps nothing): it runs
    nothing, so its rows and tasks are taken back, as the imports' check already did."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        started = process_start_time(zombie.pid)
        for _ in range(500):  # until it has exited (state Z), not reaped: no wait() yet
            if Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert started
        assert gone(this_host(), zombie.pid, started, FRESH, namespace=pid_namespace()) == (
            "its process is gone"
        )
    finally:
        zombie.wait()
