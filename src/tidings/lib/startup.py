"""What ``tidings serve`` and ``tidings worker`` make sure of before they start: a database they
can use.

Without this check a wrong ``DATABASE_URL`` (a typo in the host, port, name or password) or a
database ``tidings migrate`` has not set up went unnoticed at start: ``tidings serve`` said it was
serving and answered every page with an error, and ``tidings worker`` logged a traceback from each
of its threads before it stopped.  Now both stop at once with one line saying what is wrong (the
server's own message, which names the host, port, user and database but never the password).
"""

from __future__ import annotations

from django.core.management.base import CommandError


def require_usable_database() -> None:
    """Raise ``CommandError`` (one line) when the database cannot be reached, or lacks
    migrations this code has (``tidings migrate`` not run after an install or an upgrade)."""
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        vendor = connection.vendor
        raise CommandError(f"cannot connect to the database ({vendor}): {reason}") from None
    finally:
        # The web workers granian forks, and the worker's threads, open connections of their own.
        # (Inside a transaction — a test's — closing would leave the connection unusable for the
        # rest of it: there is nothing to hand on then.)
        if not connection.in_atomic_block:
            connection.close()
    if pending:
        count = len(pending)
        raise CommandError(
            f"the database is not set up for this version ({count} migration"
            f"{'' if count == 1 else 's'} not applied): run `tidings migrate` first"
        )
