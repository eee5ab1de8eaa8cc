"""Helpers the benchmarks share: a scratch PostgreSQL database made beside a server and dropped at
the end, and a free local port to serve on."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-key-" + "x" * 40
SERVER = "postgres://postgres@127.0.0.1:5432"
# Every scratch database's name starts so: one glance at the server tells what a benchmark left.
PREFIX = "tidings_bench_"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(poll)
    raise RuntimeError(f"nothing listens on port {port}")


# ``bench.run_all`` migrates one database and names it here: the scratch databases are then made
# as copies of it (``CREATE DATABASE … TEMPLATE``: under a second) instead of each being migrated
# (30–50 s of DDL on the shared machine, a fixed cost that is no benchmark's figure).
TEMPLATE_ENV = "TIDINGS_BENCH_TEMPLATE"


def template() -> str:
    """The migrated database to copy scratch databases from, or "" (each migrates its own)."""
    return os.environ.get(TEMPLATE_ENV, "")


def create_database(admin_url: str, name: str) -> None:
    """Create the scratch database ``name``: a copy of the run's migrated template if there is
    one (its migrations then find nothing to do), else an empty database."""
    source = template()
    clause = f' TEMPLATE "{source}"' if source else ""
    _admin(admin_url, f'CREATE DATABASE "{name}"{clause}')


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def scratch_database(bench: str, server: str = SERVER) -> Iterator[str]:
    """A new database ``tidings_bench_<bench>_<pid>`` on ``server``: yields its URL; afterwards
    Django's connections are closed and the database is dropped."""
    name = f"{PREFIX}{bench}_{os.getpid()}"
    create_database(f"{server}/postgres", name)
    try:
        yield f"{server}/{name}"
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        _admin(f"{server}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Database:
    """A database ``tidings_bench_<bench>_<pid>`` beside ``url`` (and a data directory), migrated by
    ``tidings migrate`` in a child process; ``env()`` is the environment tidings runs with."""

    def __init__(
        self,
        bench: str,
        url: str,
        *,
        settings: str = "tidings.settings",
        allowed_hosts: str | None = None,
        **extra: str,
    ) -> None:
        parts = urlsplit(url)
        self.name = f"{PREFIX}{bench}_{os.getpid()}"
        self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        self.admin = urlunsplit(parts._replace(path="/postgres"))
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"bench_{bench}_"))
        self.extra = dict(extra, DJANGO_SETTINGS_MODULE=settings)
        if allowed_hosts is not None:
            self.extra["TIDINGS_ALLOWED_HOSTS"] = allowed_hosts

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        env.update(
            DATABASE_URL=self.url,
            SECRET_KEY=SECRET,
            TIDINGS_DATA_DIR=str(self.data_dir),
            TIDINGS_LOG_LEVEL="WARNING",
            # A caller's PYTHONPATH first: PYTHONPATH=<another checkout>/src measures its code.
            PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)])),
        )
        env.update(self.extra)
        env.update(extra)
        return env

    def create(self) -> None:
        """Create and migrate the database (or copy the run's migrated template), then set
        Django up in this process on it."""
        create_database(self.admin, self.name)
        if not template():
            subprocess.run(
                [sys.executable, "-m", "tidings.cli", "migrate", "--verbosity", "0"],
                env=self.env(),
                cwd=ROOT,
                check=True,
            )
        os.environ.update(self.env())
        import django

        django.setup()

    def drop(self) -> None:
        from django.db import connections

        connections.close_all()
        _admin(self.admin, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.data_dir, ignore_errors=True)
