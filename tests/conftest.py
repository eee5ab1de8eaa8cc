import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.servers.basehttp import WSGIServer
from django.test.testcases import LiveServerThread
from filelock import FileLock

import tests.hypothesis_profiles  # noqa: F401 - registers dev, ci and deep (pytest --hypothesis-profile)


class _OneRequestAtATimeServer(WSGIServer):
    """The live server for SQLite runs.  The test database is in memory, so the server shares
    the test's one connection (Django's ``connections_override``); Django's threaded server
    would let two requests of one page (a beacon and a form post, say) use that connection at
    once ("cannot start a transaction within a transaction").  This server answers one request
    at a time, in the live server's thread, which already uses the shared connection; Django
    closes each response's connection for a server that is not threaded, so no keep-alive
    client can hold it."""

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections_override = connections_override


def pytest_configure(config):
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        LiveServerThread.server_class = _OneRequestAtATimeServer


OPERATOR_PASSWORD = "correct horse battery staple"


@pytest.fixture
def owner(db):
    """The operator who set tidings up: a superuser."""
    return get_user_model().objects.create_superuser(
        "owner", "owner@example.co.uk", OPERATOR_PASSWORD
    )


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _second_factor_only_where_tested(settings):
    # Tests sign operators in with force_login and are about other things than signing in; the
    # second factor (on by default for owners and privacy officers) is proven where it is the
    # subject: tests/web/test_two_factor.py, test_access_rules.py and tests/e2e/test_operator_2fa.py
    # set TIDINGS_REQUIRE_2FA back to "privileged" (see tests.operators.sign_in).
    settings.TIDINGS_REQUIRE_2FA = "none"


@pytest.fixture(autouse=True)
def _ingest_without_timer(settings):
    # Buffered ingest (lib/ingest.py) without its background thread: a test writes the rows by
    # calling flush(), in its own thread and transaction.  Rows a test left unflushed are dropped
    # so nothing is written after the test database is gone.
    from tidings.lib import ingest

    settings.TIDINGS_INGEST_FLUSH_SECONDS = 0
    yield
    ingest.discard_buffered()


# --- parallel runs (pytest-xdist) ----------------------------------------------------------------
# `make test` spreads the tests over several processes (`-n`, `--dist loadgroup`).  Each has its
# own test database (pytest-django adds _gw0, _gw1… to its name), its own tmp_path and free ports;
# what remains shared is one Redis database, so the tests that use it run one after another in the
# same process: they ask for the `redis_url` fixture, and that puts them in one xdist group.
REDIS_TEST_URL = os.environ.get("TIDINGS_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("redis"))


@pytest.fixture
def redis_url(settings):
    """An empty Redis database for this test (TIDINGS_TEST_REDIS_URL; skipped without Redis),
    configured as TIDINGS_REDIS_URL and emptied again afterwards."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip(f"no Redis at {REDIS_TEST_URL}")
    client.flushdb()
    settings.TIDINGS_REDIS_URL = REDIS_TEST_URL
    yield REDIS_TEST_URL
    client.flushdb()


# --- a migrated installation, made once ---------------------------------------------------------
def _clean_environment() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TIDINGS_", "DJANGO_", "DATABASE_URL", "SECRET_KEY"))
    }


@pytest.fixture(scope="session")
def migrated_installation(tmp_path_factory, worker_id) -> Path:
    """A data directory that `tidings migrate` made from nothing, as a new installation does:
    the embedded SQLite database and a generated secret key.  Starting tidings and migrating
    costs many seconds on a busy machine, so the whole run (every xdist process) makes it once,
    under a file lock.  Nobody writes to it: tests take a copy with `fresh_installation`."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # xdist: the workers' temporary folders share a parent
        shared = shared.parent
    data_dir = shared / "migrated-installation"
    with FileLock(str(shared / "migrated-installation.lock")):
        if not (data_dir / "done").exists():
            shutil.rmtree(data_dir, ignore_errors=True)
            subprocess.run(
                [sys.executable, "-m", "tidings", "migrate", "--no-input", "--verbosity", "0"],
                env={**_clean_environment(), "TIDINGS_DATA_DIR": str(data_dir)},
                cwd=shared,
                check=True,
                capture_output=True,
                timeout=600,
            )
            (data_dir / "done").touch()
    return data_dir


@pytest.fixture
def fresh_installation(migrated_installation, tmp_path) -> Path:
    """This test's own copy of the migrated data directory (TIDINGS_DATA_DIR for its processes)."""
    data_dir = tmp_path / "installation"
    shutil.copytree(migrated_installation, data_dir, ignore=shutil.ignore_patterns("done"))
    return data_dir
