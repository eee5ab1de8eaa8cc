"""`tidings worker` carries on when the database stays locked for a while (SQLite)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import OperationalError

# Committed as in production: the loop's close_old_connections() closes a connection left
# inside a test's transaction (autocommit off), and the worker's next query then failed.
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_worker_carries_on_after_the_database_stayed_locked(monkeypatch):
    """django-tasks-db's loop raises when opening its claim transaction times out on a lock
    (another process writing for longer than the busy timeout): the worker, and with it the
    sending of every mail, used to end there.  Now the loop starts again."""
    from django_tasks_db.management.commands import db_worker

    runs = []

    def run(self):
        runs.append(self)
        if len(runs) == 1:
            raise OperationalError("database is locked")

    monkeypatch.setattr(db_worker.Worker, "run", run)
    call_command("worker", "--no-scheduler", "--no-delivery", "--interval", "0")
    assert len(runs) == 2


def test_other_database_errors_still_stop_the_worker(monkeypatch):
    from django_tasks_db.management.commands import db_worker

    def run(self):
        raise OperationalError("no such table: django_tasks_database_dbtaskresult")

    monkeypatch.setattr(db_worker.Worker, "run", run)
    with pytest.raises(OperationalError, match="no such table"):
        call_command("worker", "--no-scheduler", "--no-delivery", "--interval", "0")
