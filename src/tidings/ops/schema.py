"""Which migrations a database has, compared with the migrations this code knows.

The *schema version* of a database is the set of migrations applied to it; a backup's manifest
records the latest one per app.  A database (or a backup) with a migration this code does not
have on disk was made by a newer tidings, and must not be used by this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connections
from django.db.migrations.loader import MigrationLoader


@dataclass
class SchemaState:
    applied_count: int = 0
    pending: list[str] = field(default_factory=list)  # "app.0003_name", known but not applied
    unknown: list[str] = field(default_factory=list)  # applied, but not in this code
    latest: dict[str, str] = field(default_factory=dict)  # app → latest applied migration


def code_migrations() -> set[tuple[str, str]]:
    """Every migration this code has on disk, as (app label, name)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return set(loader.disk_migrations)


def applied_migrations(alias: str = "default") -> set[tuple[str, str]]:
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections[alias])
    if not recorder.has_table():
        return set()
    return set(recorder.applied_migrations())


def compare(applied: set[tuple[str, str]], known: set[tuple[str, str]]) -> SchemaState:
    latest: dict[str, str] = {}
    for app, name in sorted(applied):
        latest[app] = name  # names sort by their number
    return SchemaState(
        applied_count=len(applied),
        pending=sorted(f"{a}.{n}" for a, n in known - applied),
        unknown=sorted(f"{a}.{n}" for a, n in applied - known),
        latest=latest,
    )


def schema_state(alias: str = "default") -> SchemaState:
    """The configured database's migrations against the code's."""
    return compare(applied_migrations(alias), code_migrations())
