"""`tidings backup` and `tidings restore` as an administrator runs them: real processes, real
SQLite files in their own data directories, an import running during the backup, and an erasure
made after it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "backup-test-secret-key-" + "k" * 40
IMPORT_ROWS = 150_000


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TIDINGS_") and k not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        SECRET_KEY=SECRET,
        TIDINGS_DATA_DIR=str(data_dir),
        TIDINGS_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def tidings(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "tidings.cli", *args],
        env=env_for(data_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def fixture(data_dir: Path, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.ops.backup_fixture", *args],
        env=env_for(data_dir, DJANGO_SETTINGS_MODULE="tidings.settings"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def table_counts(database: Path) -> dict[str, int]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        count = 'SELECT count(*) FROM "{}"'
        return {t: connection.execute(count.format(t)).fetchone()[0] for t in tables}
    finally:
        connection.close()


def contacts_in(database: Path) -> int:
    try:
        return table_counts(database).get("audience_contact", 0)
    except sqlite3.Error:
        return 0


@pytest.fixture
def installation(fresh_installation) -> Path:
    """A migrated data directory of this test's own (migrated once a run: tests/conftest.py)."""
    return fresh_installation


def test_a_backup_taken_during_an_import_restores_into_a_fresh_data_dir_with_equal_counts(
    installation, tmp_path
):
    fixture(installation, "list", "Product news")
    csv = tmp_path / "people.csv"
    with csv.open("w") as fp:
        fp.write("email,name\n")
        fp.writelines(f"reader{n}@example.org,Reader {n}\n" for n in range(IMPORT_ROWS))
    database = installation / "tidings.sqlite3"
    backup_dir = tmp_path / "backups" / "one"
    # `tidings backup`, started beforehand so that Django's start-up is behind it when it is told.
    backup = subprocess.Popen(
        [sys.executable, "-m", "tests.ops.backup_fixture", "backup-when-told", str(backup_dir)],
        env=env_for(installation, DJANGO_SETTINGS_MODULE="tidings.settings"),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert backup.stdout.readline() == "ready\n"
    importing = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tidings.cli",
            "import",
            "contacts",
            str(csv),
            "--list",
            "Product news",
            "--consent-source",
            "2025 webinar sign-ups",
        ],
        env=env_for(installation),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while contacts_in(database) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        out, err = backup.communicate("go\n", timeout=120)
        assert backup.returncode == 0, err[-3000:]
        assert f"Backed up to {backup_dir}" in out
    finally:
        _, err = importing.communicate(timeout=300)
    assert importing.returncode == 0, err[-2000:]

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    in_backup = manifest["counts"]["audience_contact"]
    assert 0 < in_backup < IMPORT_ROWS, "the import was not running during the backup"
    assert contacts_in(database) == IMPORT_ROWS  # the import went on and finished
    # One consistent snapshot: each import batch is one transaction with its subscriptions and
    # the import's own counters, so the copy holds whole batches only.
    assert manifest["counts"]["audience_subscription"] == in_backup
    assert manifest["schema"]["latest"]["campaigns"] and manifest["policy"]["sha256"]
    assert (installation / "last-backup").exists()  # the doctor's stamp

    fresh = tmp_path / "fresh"
    restored = tidings(fresh, "restore", str(backup_dir)).stdout
    assert "row counts match the manifest" in restored
    assert table_counts(fresh / "tidings.sqlite3") == manifest["counts"]
    copy = sqlite3.connect(fresh / "tidings.sqlite3")
    created = copy.execute("SELECT created FROM audience_import").fetchone()[0]
    copy.close()
    assert created == in_backup
    doctor = tidings(fresh, "doctor", "--only", "database", "--json")
    assert json.loads(doctor.stdout)["ok"]


def test_people_erased_after_a_backup_stay_erased_when_it_is_restored(installation, tmp_path):
    people = ["ada@example.org", "bob@example.org", "cy@example.org"]
    fixture(installation, "people", *people)
    backup_dir = tmp_path / "backup"
    tidings(installation, "backup", str(backup_dir))
    erased = fixture(installation, "erase", "bob@example.org")
    assert erased["signal_sent_by_erasure"], "the erasure itself journals the person"
    journal = installation / "erasure-journal.jsonl"
    line = json.loads(journal.read_text().strip())
    assert set(line) == {"h", "at", "reason"} and line["reason"] == "request"
    assert "bob" not in journal.read_text()  # a keyed hash, no address

    # The machine was lost: a fresh data directory, the backup, and a copy of the journal.
    fresh = tmp_path / "fresh"
    out = tidings(fresh, "restore", str(backup_dir), "--erasure-journal", str(journal)).stdout
    assert "1 of them were in the backup and were erased again" in out
    report = fixture(fresh, "report", *people)
    assert report["held"] == ["ada@example.org", "cy@example.org"]
    assert report["suppressed"] == ["bob@example.org"]

    # The same backup restored over the live installation: its own journal is applied.
    refused = tidings(installation, "restore", str(backup_dir), check=False)
    assert refused.returncode == 1
    assert "pass --replace" in refused.stderr
    tidings(installation, "restore", str(backup_dir), "--replace")
    report = fixture(installation, "report", *people)
    assert report["held"] == ["ada@example.org", "cy@example.org"]
    assert list(installation.glob("tidings.sqlite3.before-restore-*"))


def test_a_backup_from_a_newer_tidings_is_refused_and_nothing_is_changed(installation, tmp_path):
    backup_dir = tmp_path / "backup"
    tidings(installation, "backup", str(backup_dir))
    database = backup_dir / "tidings.sqlite3"
    # What a newer version's backup looks like: a migration this code does not have.
    copy = sqlite3.connect(database)
    copy.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES "
        "('campaigns', '9999_from_the_future', '2030-01-01 00:00:00')"
    )
    copy.commit()
    copy.close()
    from tidings.ops.backup import describe_copy, sha256_of

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    described = describe_copy(database)
    manifest["schema"]["migrations"] = described["migrations"]
    manifest["counts"] = described["counts"]
    manifest["database"]["sha256"] = sha256_of(database)
    (backup_dir / "manifest.json").write_text(json.dumps(manifest))

    fresh = tmp_path / "fresh"
    result = tidings(fresh, "restore", str(backup_dir), check=False)
    assert result.returncode == 1
    assert "made by a newer tidings" in result.stderr
    assert "campaigns.9999_from_the_future" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (fresh / "tidings.sqlite3").exists() or contacts_in(fresh / "tidings.sqlite3") == 0


def test_a_damaged_or_unfinished_backup_is_refused(installation, tmp_path):
    backup_dir = tmp_path / "backup"
    tidings(installation, "backup", str(backup_dir))
    with (backup_dir / "tidings.sqlite3").open("r+b") as fp:
        fp.seek(5000)
        fp.write(b"\xff" * 16)
    result = tidings(tmp_path / "fresh", "restore", str(backup_dir), check=False)
    assert result.returncode == 1
    assert "does not match its manifest" in result.stderr
    (backup_dir / "manifest.json").unlink()
    result = tidings(tmp_path / "fresh", "restore", str(backup_dir), check=False)
    assert "not a finished tidings backup" in result.stderr


def test_backing_up_into_a_directory_that_holds_files_is_refused(installation, tmp_path):
    target = tmp_path / "full"
    target.mkdir()
    (target / "something").write_text("x")
    result = tidings(installation, "backup", str(target), check=False)
    assert result.returncode == 1
    assert "not an empty directory" in result.stderr


def test_postgresql_installations_are_pointed_at_pg_dump(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tidings.cli", "backup", str(tmp_path / "b")],
        env=env_for(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/nothing_here"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "pg_dump" in result.stderr and "tidings erasures reapply" in result.stderr


def test_a_journal_copy_that_is_missing_or_not_a_journal_is_refused_before_restoring(
    installation, tmp_path
):
    """The administrator names the copy of the erasure journal that keeps erased people out of
    the restored database: a typo or the wrong file must stop the restore with one line, not
    restore everyone silently (or restore, then crash before the erasures are applied)."""
    fixture(installation, "people", "ada@example.org")
    backup_dir = tmp_path / "backup"
    tidings(installation, "backup", str(backup_dir))
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    for journal, says in ((tmp_path / "no-such.jsonl", "no such file"), (picture, "not an")):
        fresh = tmp_path / f"fresh-{journal.stem}"
        result = tidings(
            fresh, "restore", str(backup_dir), "--erasure-journal", str(journal), check=False
        )
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert str(journal) in result.stderr and says in result.stderr
        assert contacts_in(fresh / "tidings.sqlite3") == 0, "nothing restored"


@pytest.mark.parametrize(
    "manifest", [None, "[]", '"text"', "3", '{"kind": "tidings-backup", "format": 1}']
)
def test_restoring_from_something_that_is_no_backup_directory_is_one_line(tmp_path, manifest):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    if manifest is None:  # a file given where the backup directory goes
        source = tmp_path / "tidings.sqlite3"
        source.write_bytes(b"SQLite format 3\x00")
    else:
        source = tmp_path / "backup"
        source.mkdir()
        (source / "manifest.json").write_text(manifest)
    with pytest.raises(CommandError) as raised:
        call_command("restore", str(source))
    assert str(source) in str(raised.value)
    assert "not a" in str(raised.value)


def _with_file_size_limit(limit: int):
    """What a full disk looks like to SQLite, without root: writes past ``limit`` bytes fail
    (EFBIG; SIGXFSZ ignored, so the process is not killed)."""
    import resource
    import signal

    def limit_writes():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limit_writes


def tidings_on_a_full_disk(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tidings.cli", *args],
        env=env_for(data_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_with_file_size_limit(64 * 1024),
    )


def test_a_backup_that_runs_out_of_disk_says_so_in_one_line_and_leaves_nothing_behind(
    installation, tmp_path
):
    """The disk filled during `tidings backup`: the administrator saw a traceback, and a
    directory holding an empty `tidings.sqlite3.partial` that the next run refused as "not an
    empty directory"."""
    target = tmp_path / "backups" / "today"
    result = tidings_on_a_full_disk(installation, "backup", str(target))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "could not write the backup" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not target.exists()
    assert not (installation / "last-backup").exists(), "no stamp for a backup that failed"
    tidings(installation, "backup", str(target))  # room again: the same path works
    assert (target / "manifest.json").exists()


def test_a_restore_that_runs_out_of_disk_leaves_the_current_database_in_place(
    installation, tmp_path
):
    """`tidings restore --replace` moved the current database aside and then failed to write the
    copy (disk full): the installation was left with no database at all, and a traceback."""
    fixture(installation, "people", "ada@example.org")
    backup_dir = tmp_path / "backup"
    tidings(installation, "backup", str(backup_dir))
    database = installation / "tidings.sqlite3"
    before = table_counts(database)
    result = tidings_on_a_full_disk(installation, "restore", str(backup_dir), "--replace")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "the current database was not touched" in result.stderr
    assert table_counts(database) == before
    assert not list(installation.glob("tidings.sqlite3.before-restore-*"))
    assert not list(installation.glob("*.restoring"))


def test_backup_and_restore_leave_no_sqlite_side_files_behind(installation, tmp_path):
    """A backup directory held `tidings.sqlite3.partial-wal` and `-shm` (the copy kept the live
    database's WAL mode, and the check opened it read-only), a restore added `-wal`/`-shm` to the
    backup directory it only read (a read-only mount of off-site backups could not be restored
    from) and left `tidings.sqlite3.restoring-wal`/`-shm` in the data directory."""
    fixture(installation, "people", "ada@example.org")
    backup_dir = tmp_path / "backup"
    tidings(installation, "backup", str(backup_dir))
    assert sorted(p.name for p in backup_dir.iterdir()) == ["manifest.json", "tidings.sqlite3"]
    fresh = tmp_path / "fresh"
    tidings(fresh, "restore", str(backup_dir))
    assert sorted(p.name for p in backup_dir.iterdir()) == ["manifest.json", "tidings.sqlite3"]
    assert not list(fresh.glob("*.restoring*")), sorted(p.name for p in fresh.iterdir())
    assert contacts_in(fresh / "tidings.sqlite3") == 1


def _wait_for_lock(database: Path, seconds: float = 60) -> None:
    from tidings.lib.running import SUFFIX, others_running

    deadline = time.monotonic() + seconds
    while not others_running(database.with_name(database.name + SUFFIX)):
        assert time.monotonic() < deadline, "the process never took its lock"
        time.sleep(0.05)


def test_restore_replace_refuses_while_a_worker_without_delivery_runs_on_the_database(
    installation, tmp_path
):
    """A worker that sends no mail (``--no-delivery``), as a web process, holds the lock file
    that tells restore it is there (its heartbeat, kept for its tasks, is no delivery worker's)."""
    fixture(installation, "people", "ada@example.org")
    backup_dir = tmp_path / "backup"
    tidings(installation, "backup", str(backup_dir))
    database = installation / "tidings.sqlite3"
    worker = subprocess.Popen(
        [sys.executable, "-m", "tidings.cli", "worker", "--no-delivery", "--no-scheduler"],
        env=env_for(installation),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_lock(database)
        refused = tidings(installation, "restore", "--replace", str(backup_dir), check=False)
    finally:
        worker.terminate()
        worker.wait(timeout=60)

    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "`tidings serve` or `tidings worker` is running" in lines[0]
    assert not list(installation.glob("tidings.sqlite3.before-restore-*"))  # nothing moved
    assert "Restored" in tidings(installation, "restore", "--replace", str(backup_dir)).stdout


def test_restore_replace_refuses_while_the_web_server_runs_on_the_database(installation, tmp_path):
    import socket

    tidings(installation, "backup", str(tmp_path / "backup"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = subprocess.Popen(
        [sys.executable, "-m", "tidings.cli", "serve", "--port", str(port)],
        env=env_for(installation),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_lock(installation / "tidings.sqlite3")
        refused = tidings(
            installation, "restore", "--replace", str(tmp_path / "backup"), check=False
        )
    finally:
        web.terminate()
        web.wait(timeout=60)

    assert refused.returncode != 0 and "is running on the current database" in refused.stderr


def test_a_backup_is_its_owner_s_only_whatever_the_umask(installation, tmp_path):
    """`tidings backup` run by hand from a shell (umask 022) made a folder, a manifest and an
    erasure-journal copy every user of the machine could read (only the database was 0600)."""
    (installation / "erasure-journal.jsonl").write_text('{"hash": "x"}\n')
    backup_dir = tmp_path / "backup"
    previous = os.umask(0o022)
    try:
        tidings(installation, "backup", str(backup_dir))
    finally:
        os.umask(previous)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in [backup_dir, *backup_dir.iterdir()]}
    assert modes == {
        "backup": "0o700",
        "erasure-journal.jsonl": "0o600",
        "manifest.json": "0o600",
        "tidings.sqlite3": "0o600",
    }
