"""Processes on this machine: is the one that registered as (pid, start time) still running,
and where do pids mean something.  Workers (``campaigns.queue``), task runners and imports
record who runs them with these, and judge with them whether that process is gone."""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path


def _stat(pid: int) -> list[bytes]:
    """Process ``pid``'s /proc stat fields from its state on (field 3): [] if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fp:  # noqa: PTH123
            stat = fp.read()
    except OSError:
        return []
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    return stat.rpartition(b")")[2].split()


def process_start_time(pid: int) -> str:
    """When process ``pid`` started, in the kernel's clock ticks since boot ("" if unknown)."""
    fields = _stat(pid)
    return fields[19].decode() if len(fields) > 19 else ""


def process_alive(pid: int, started: str) -> bool:
    """Is the process that registered as (pid, started) still running on this host?  A killed
    process its parent has not reaped yet (a zombie, state Z) keeps its pid and start time but
    runs nothing: gone."""
    fields = _stat(pid)
    if fields and fields[0] == b"Z":
        return False
    if started:
        return len(fields) > 19 and fields[19].decode() == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def this_host() -> str:
    """This machine's (or container's) name, as workers record it."""
    return socket.gethostname()[:100]


@functools.cache
def pid_namespace() -> str:
    """Where this process's pids mean something: ``<boot id>:<pid namespace inode>`` ("" where
    /proc does not say, as off Linux).  Processes with the same value see the same pids, so one
    may look up whether the other is still running; a host name does not tell that much: two
    containers given the same ``--hostname``, or a pod restarted under its name, share it but
    not their pids.  The boot id tells two machines (and two boots of one) apart, the inode two
    namespaces of one kernel."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        inode = os.stat("/proc/self/ns/pid").st_ino  # noqa: PTH116 - the namespace's inode
    except OSError:
        return ""
    return f"{boot}:{inode}" if boot else ""
