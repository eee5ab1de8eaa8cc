"""Which tidings processes are running on this machine's SQLite database: a lock file.

``tidings serve`` and ``tidings worker`` hold a shared ``flock`` on ``<database>.running`` (next
to ``tidings.sqlite3``) for as long as they run; ``tidings restore --replace`` asks for it
exclusively, without waiting, and refuses while anyone holds it.  The kernel drops a process's
lock when the process ends, however it ends (``kill -9`` included), so the file never says a
dead process is running and needs no clean-up (which a pid file would: pids are reused).  The
workers' heartbeat rows (``campaigns.queue``) say which workers are alive on any database, on
any machine; they are no help here: a web process writes none.

Only SQLite: a PostgreSQL installation is restored with ``pg_restore`` (README, "Backups").
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from django.conf import settings

SUFFIX = ".running"
_held: list[int] = []  # the descriptors this process holds its lock through (one in practice)


def lock_path() -> Path | None:
    """The lock file of the configured SQLite database; None for PostgreSQL."""
    db = settings.DATABASES["default"]
    name = str(db["NAME"])
    if db["ENGINE"] != "django.db.backends.sqlite3" or _in_memory(name):
        return None
    database = Path(db["NAME"])
    return database.with_name(database.name + SUFFIX)


def _in_memory(name: str) -> bool:
    """``:memory:``, or a URI of a shared in-memory database (Django's test database on SQLite,
    ``file:memorydb_default?mode=memory&cache=shared``): no file, so nothing to lock — a lock
    file named after the URI would be written into the working directory."""
    return name == ":memory:" or (name.startswith("file:") and "mode=memory" in name)


def hold() -> None:
    """Mark this process as running on the database until it ends (serve, worker).  The lock is
    inherited by processes forked from this one (granian's web workers)."""
    path = lock_path()
    if path is None or _held:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    _held.append(fd)


def release() -> None:
    """Stop marking this process as running (for tests; a process's end does it)."""
    while _held:
        os.close(_held.pop())


def others_running(path: Path | None = None) -> bool:
    """Whether another process holds the lock on ``path`` (default: the configured database's)."""
    path = path or lock_path()
    if path is None or not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock we may have taken
    return False
