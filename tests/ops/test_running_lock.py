"""``lib.running``: the lock file that says serve or worker runs on a SQLite database."""

from pathlib import Path

import pytest
from django.test import override_settings

from tidings.lib import running


def _sqlite(name: str) -> dict:
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": name}}


@pytest.mark.parametrize("name", [":memory:", "file:memorydb_default?mode=memory&cache=shared"])
def test_an_in_memory_database_has_no_lock_file(name, tmp_path, monkeypatch):
    """Django's test database on SQLite is a shared in-memory URI: holding the lock must write
    no file named after it into the working directory (one had been committed by accident)."""
    monkeypatch.chdir(tmp_path)
    with override_settings(DATABASES=_sqlite(name)):
        assert running.lock_path() is None
        running.hold()
        try:
            assert list(tmp_path.iterdir()) == []
        finally:
            running.release()


def test_a_database_file_has_its_lock_beside_it(tmp_path):
    database = tmp_path / "tidings.sqlite3"
    with override_settings(DATABASES=_sqlite(str(database))):
        assert running.lock_path() == Path(str(database) + running.SUFFIX)
