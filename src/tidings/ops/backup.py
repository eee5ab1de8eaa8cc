"""``tidings backup PATH`` and ``tidings restore PATH`` for the embedded SQLite database.

A backup is a directory::

    PATH/tidings.sqlite3        the database, copied with SQLite's online backup API
    PATH/erasure-journal.jsonl  the erasure journal as it was (keyed hashes only)
    PATH/manifest.json          written last: a directory without it is not a finished backup

The copy is one step of ``sqlite3.Connection.backup``: it reads a single snapshot (the database is
in WAL mode, so the web and worker processes keep writing meanwhile, and nothing they commit after
the snapshot is in it, nor half of any transaction).  The manifest then describes that copy, read
from the copy itself: its schema version (the migrations applied, and the latest per app), the
policy file's SHA-256, the rows in every table, the file's SHA-256 and size.

Restoring checks the file against the manifest, refuses a backup made by a newer tidings (a
migration this code does not have), copies it into the configured data directory (moving an
existing database aside only with ``--replace``, and never while ``tidings serve`` or ``tidings
worker`` runs on it: ``lib.running``'s lock file, and the delivery workers' heartbeats),
checks the row counts against the manifest, applies the migrations the backup is behind by, and
erases again the people the erasure journals name (``ops.journal``).

PostgreSQL is backed up with ``pg_dump`` (see the README's recipe); ``tidings erasures reapply``
does the last step after a ``pg_restore``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from tidings.lib import running

FORMAT = 1
DATABASE_FILE = "tidings.sqlite3"
JOURNAL_FILE = "erasure-journal.jsonl"
MANIFEST_FILE = "manifest.json"


class BackupError(Exception):
    """Why a backup or restore cannot be done, in one line."""


def database_path() -> Path:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.sqlite3":
        raise BackupError(
            "the database is PostgreSQL: back it up with pg_dump and restore it with pg_restore "
            "(README, 'Backups'), then run `tidings erasures reapply`"
        )
    return Path(db["NAME"])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fp:
        for block in iter(lambda: fp.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def policy_hash() -> str:
    try:
        return hashlib.sha256(Path(settings.TIDINGS_POLICY).read_bytes()).hexdigest()
    except OSError:
        return ""


def describe_copy(path: Path) -> dict[str, Any]:
    """Schema version and row counts, read from a database file (not the live database)."""
    # immutable: a file nobody writes to; no -wal/-shm is made beside it (a backup's directory)
    connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        check = connection.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"{path} fails SQLite's integrity check: {check}")
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        counts = {
            table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # noqa: S608
            for table in tables
        }
        migrations = sorted(
            f"{app}.{name}"
            for app, name in connection.execute("SELECT app, name FROM django_migrations")
        )
    finally:
        connection.close()
    latest: dict[str, str] = {}
    for item in migrations:
        app, _, name = item.partition(".")
        latest[app] = max(latest.get(app, ""), name)
    return {"counts": counts, "migrations": migrations, "latest": latest}


@dataclass
class Manifest:
    data: dict[str, Any]

    @property
    def counts(self) -> dict[str, int]:
        return self.data["counts"]

    @property
    def migrations(self) -> list[str]:
        return self.data["schema"]["migrations"]

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST_FILE
        if directory.exists() and not directory.is_dir():
            raise BackupError(
                f"{directory} is not a backup directory: give the directory `tidings backup` made"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackupError(
                f"{directory} is not a finished tidings backup: it has no {MANIFEST_FILE}"
            ) from None
        except ValueError:
            raise BackupError(f"{path} is not valid JSON") from None
        if (
            not isinstance(data, dict)
            or data.get("kind") != "tidings-backup"
            or not isinstance(data.get("format"), int)
        ):
            raise BackupError(f"{path} is not a tidings backup manifest")
        if data["format"] > FORMAT:
            raise BackupError(
                f"{path} has format {data['format']}; this tidings reads format {FORMAT}: "
                "upgrade tidings"
            )
        try:  # what restore reads, so that a cut or edited manifest is refused here
            shape_ok = (
                isinstance(data["database"]["file"], str)
                and isinstance(data["database"]["sha256"], str)
                and isinstance(data["schema"]["migrations"], list)
                and isinstance(data["counts"], dict)
            )
        except (KeyError, TypeError):
            shape_ok = False
        if not shape_ok:
            raise BackupError(f"{path} is not a complete tidings backup manifest")
        return cls(data)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tidings")
    except PackageNotFoundError:
        return ""


def _copy_database(source: Path, destination: Path, *, read_only: bool = False) -> None:
    """Copy a database with SQLite's online backup API, in one step (pages=-1): one read
    transaction, so one consistent snapshot; in WAL mode the writers are not blocked meanwhile."""
    uri = f"file:{source}?mode=ro&immutable=1" if read_only else str(source)
    reading = sqlite3.connect(uri, uri=read_only, timeout=30)
    writing = sqlite3.connect(destination)
    try:
        reading.backup(writing, pages=-1)
        # The copy takes the source's WAL mode; a file in rollback mode is one file, which a
        # read-only open (the checks below, a restore from a read-only mount) leaves alone.
        writing.execute("PRAGMA journal_mode=DELETE")
    finally:
        writing.close()
        reading.close()


def backup(target: Path) -> Manifest:
    """Back the running installation up into the new directory ``target``."""
    source = database_path()
    if not source.exists():
        raise BackupError(f"there is no database at {source}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} already exists and is not an empty directory")
    created = not target.exists()
    # Owner only, whatever the umask of whoever runs it (`tidings backup` by hand from a shell
    # with umask 022 made a folder and files every user of the machine could read).
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = [
        target / name
        for name in (DATABASE_FILE + ".partial", DATABASE_FILE, JOURNAL_FILE, MANIFEST_FILE)
    ] + [target / (MANIFEST_FILE + ".partial")]
    try:
        data = _write_backup(source, target)
    except (sqlite3.Error, OSError) as exc:
        # A full disk (or a failing one) half-way: leave nothing that looks like a backup, nor a
        # directory the next run would refuse as "not empty".
        for path in written:
            path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                target.rmdir()
        raise BackupError(
            f"could not write the backup into {target}: {exc} (is the disk full?); nothing was kept"
        ) from None
    stamp = Path(settings.TIDINGS_BACKUP_STAMP)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(data["created_at"] + "\n", encoding="utf-8")
    return Manifest(data)


def _write_backup(source: Path, target: Path) -> dict[str, Any]:
    partial = target / (DATABASE_FILE + ".partial")
    _copy_database(source, partial)
    described = describe_copy(partial)
    database_file = target / DATABASE_FILE
    partial.rename(database_file)
    database_file.chmod(0o600)
    journal = Path(settings.TIDINGS_ERASURE_JOURNAL)
    journal_entries = None
    if journal.exists():
        shutil.copyfile(journal, target / JOURNAL_FILE)
        (target / JOURNAL_FILE).chmod(0o600)
        journal_entries = sum(1 for line in (target / JOURNAL_FILE).open() if line.strip())
    data = {
        "kind": "tidings-backup",
        "format": FORMAT,
        "created_at": timezone.now().isoformat(),
        "tidings_version": _version(),
        "database": {
            "engine": "sqlite",
            "file": DATABASE_FILE,
            "bytes": database_file.stat().st_size,
            "sha256": sha256_of(database_file),
        },
        "schema": {"latest": described["latest"], "migrations": described["migrations"]},
        "policy": {"file": str(settings.TIDINGS_POLICY), "sha256": policy_hash()},
        "counts": described["counts"],
        "erasure_journal": (
            {"file": JOURNAL_FILE, "entries": journal_entries}
            if journal_entries is not None
            else None
        ),
    }
    partial_manifest = target / (MANIFEST_FILE + ".partial")
    with os.fdopen(
        os.open(partial_manifest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        "w",
        encoding="utf-8",
    ) as fp:
        fp.write(json.dumps(data, indent=2, sort_keys=True))
        fp.flush()
        os.fsync(fp.fileno())
    partial_manifest.rename(target / MANIFEST_FILE)
    return data


@dataclass
class Restored:
    manifest: Manifest
    target: Path
    moved_aside: Path | None = None
    migrated: list[str] = field(default_factory=list)
    policy_changed: bool = False
    erasures: Any = None  # journal.Reapplied


def _live_workers(path: Path) -> int:
    """Delivery workers with a current heartbeat in the database file at ``path``."""
    from tidings.campaigns.config import DeliveryConfig

    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        cutoff = timezone.now().timestamp() - DeliveryConfig.from_settings().lease_seconds
        rows = connection.execute(
            "SELECT last_seen FROM campaigns_deliveryworker WHERE stopped_at IS NULL"
        ).fetchall()
        connection.close()
    except sqlite3.Error:
        return 0
    alive = 0
    for (last_seen,) in rows:
        try:
            seen = datetime.fromisoformat(last_seen)
        except (TypeError, ValueError):
            continue
        if timezone.is_naive(seen):
            seen = timezone.make_aware(seen, timezone.get_fixed_timezone(0))
        alive += seen.timestamp() >= cutoff
    return alive


def restore(
    source: Path, *, replace: bool = False, journals: list[Path] | tuple[Path, ...] = ()
) -> Restored:
    """Restore the backup directory ``source`` into the configured database (see the module)."""
    from django.core.management import call_command
    from django.db import connections

    from . import journal
    from .schema import code_migrations

    manifest = Manifest.read(source)
    sources = [Path(settings.TIDINGS_ERASURE_JOURNAL), *journals]
    if (source / JOURNAL_FILE).exists():
        sources.append(source / JOURNAL_FILE)
    try:  # every journal reads (and the ones the operator named exist) before anything changes
        journal.read(sources, required=journals)
    except journal.JournalError as exc:
        raise BackupError(str(exc)) from None
    database_file = source / manifest.data["database"]["file"]
    if not database_file.exists():
        raise BackupError(f"{database_file} is missing")
    if sha256_of(database_file) != manifest.data["database"]["sha256"]:
        raise BackupError(f"{database_file} does not match its manifest (damaged or changed)")
    known = {f"{app}.{name}" for app, name in code_migrations()}
    newer = sorted(set(manifest.migrations) - known)
    if newer:
        raise BackupError(
            f"this backup was made by a newer tidings: {len(newer)} migration(s) this code does "
            f"not know (first: {newer[0]}); install that version (or a later one) and restore "
            "with it"
        )
    target = database_path()
    result = Restored(manifest=manifest, target=target)
    connections.close_all()
    if target.exists() and target.stat().st_size > 0:
        if not replace:
            raise BackupError(
                f"there is already a database at {target}; restore into an empty data "
                "directory, or pass --replace to move it aside first"
            )
        if running.others_running(target.with_name(target.name + running.SUFFIX)):
            raise BackupError(
                "`tidings serve` or `tidings worker` is running on the current database: stop "
                "them first (systemctl stop tidings-web tidings-worker)"
            )
        if _live_workers(target):
            raise BackupError(
                "a delivery worker is running on the current database: stop `tidings worker` "
                "and the web server first"
            )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".restoring")
    partial.unlink(missing_ok=True)
    try:  # the copy is made and checked before the current database is moved aside
        _copy_database(database_file, partial, read_only=True)
        counts = describe_copy(partial)["counts"]
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(
            f"could not copy the backup to {partial}: {exc} (is the disk full?); "
            "the current database was not touched"
        ) from None
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    if counts != manifest.counts:
        differ = sorted(
            t for t in set(counts) | set(manifest.counts) if counts.get(t) != manifest.counts.get(t)
        )
        partial.unlink()
        raise BackupError(f"the restored copy's row counts differ from the manifest ({differ[0]})")
    if target.exists() and target.stat().st_size > 0:
        stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
        aside = target.with_name(f"{target.name}.before-restore-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            existing = Path(f"{target}{suffix}")
            if existing.exists():
                existing.rename(Path(f"{aside}{suffix}"))
        result.moved_aside = aside
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    partial.replace(target)
    target.chmod(0o600)
    connections.close_all()

    from .schema import schema_state

    result.migrated = schema_state().pending
    if result.migrated:
        call_command("migrate", interactive=False, verbosity=0)
    result.policy_changed = bool(manifest.data.get("policy", {}).get("sha256")) and (
        manifest.data["policy"]["sha256"] != policy_hash()
    )
    result.erasures = journal.do_reapply_erasures(sources)
    return result
