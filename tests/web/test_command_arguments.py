"""`tidings serve` and `tidings worker` given values they cannot use: one clear line and a
non-zero exit, before anything starts (was: a traceback from granian or time.sleep)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import load_command_class
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[2]


def parse(name: str, *args: str):
    parser = load_command_class("tidings.web", name).create_parser("tidings", name)
    return parser.parse_args(list(args))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--port", "99999"), "--port"),
        (("--port", "0"), "--port"),
        (("--port", "-1"), "--port"),
        (("--workers", "0"), "--workers"),
        (("--threads", "-1"), "--threads"),
        (("--host", "not a host"), "--host"),
        (("--host", "localhost"), "--host"),
    ],
)
def test_serve_refuses_values_it_cannot_listen_with(args, says):
    with pytest.raises(CommandError) as raised:
        parse("serve", *args)
    assert says in str(raised.value)


@pytest.mark.parametrize("args", [("--interval", "-1"), ("--interval", "nan")])
def test_worker_refuses_a_negative_interval(args):
    with pytest.raises(CommandError) as raised:
        parse("worker", *args)
    assert "--interval" in str(raised.value)


def test_worker_refuses_to_be_told_to_only_send_and_not_send():
    """``--delivery-only --no-delivery`` ran nothing at all and exited 0 at once."""
    with pytest.raises(CommandError) as raised:
        parse("worker", "--delivery-only", "--no-delivery")
    assert "--no-delivery" in str(raised.value) and "--delivery-only" in str(raised.value)


def test_the_usual_values_are_accepted():
    options = parse("serve", "--host", "10.0.0.5", "--port", "8000", "--workers", "2")
    assert (options.host, options.port, options.workers) == ("10.0.0.5", 8000, 2)
    assert parse("serve", "--host", "::1").host == "::1"
    assert parse("worker", "--interval", "0").interval == 0


def test_from_the_command_line_a_bad_port_is_one_line_and_exit_status_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "tidings", "serve", "--port", "99999"],
        env={**env, "TIDINGS_DATA_DIR": str(tmp_path)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1].startswith("tidings serve: error: argument --port")
    )


def test_an_argument_that_is_not_utf8_is_one_line_not_a_traceback(transactional_db, capsys):
    """`tidings journeys export $'\\xff'` was a UnicodeEncodeError traceback from the database."""
    from tidings.cli import main

    not_utf8 = os.fsdecode(b"caf\xe9")  # Latin-1 bytes from an old terminal: a lone surrogate
    assert main(["journeys", "export", not_utf8]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tidings: argument 3 is not UTF-8 text"]


def test_a_file_whose_name_is_not_utf8_is_still_read(tmp_path):
    folder = os.fsencode(tmp_path)
    path = folder + b"/caf\xe9.toml"
    Path(os.fsdecode(path)).write_text("this is not a journey\n")
    result = subprocess.run(
        [sys.executable, "-m", "tidings", "journeys", "load", path],
        capture_output=True,
        env={**os.environ, "TIDINGS_DATA_DIR": os.fsdecode(folder + b"/var")},
        cwd=ROOT,
    )
    err = result.stderr.decode("utf-8", "backslashreplace")
    assert result.returncode == 1, err
    assert "not UTF-8" not in err and "Traceback" not in err
    assert "caf" in err  # the journey file itself is read and refused, naming the file


def _tidings(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
    )


def test_a_command_on_a_database_never_migrated_says_to_migrate(tmp_path):
    """`tidings rights list` (or `retention run`) before `tidings migrate` was a traceback ending
    in "no such table"."""
    result = _tidings(
        "rights", "list", TIDINGS_DATA_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path}/t.db"
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("tidings: the database is not set up for this version")
    assert line.endswith("run `tidings migrate` first")


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path):
    result = _tidings(
        "retention",
        "run",
        TIDINGS_DATA_DIR=str(tmp_path),
        DATABASE_URL="postgres://postgres@127.0.0.1:9/nothing",
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("tidings: cannot connect to the database (postgresql)")


def test_serve_warns_that_several_processes_without_redis_count_limits_apart():
    from tidings.web.management.commands.serve import shared_counters_warning

    warning = shared_counters_warning(2, "")
    assert "2 web processes without TIDINGS_REDIS_URL" in warning
    assert "up to 2 times looser" in warning and "lockouts are shared" in warning
    assert shared_counters_warning(1, "") == ""
    assert shared_counters_warning(4, "redis://127.0.0.1:6379/0") == ""


@pytest.mark.django_db
def test_serve_prints_the_warning_before_it_starts(monkeypatch, settings, tmp_path):
    import io

    import granian
    from django.core.management import call_command

    class Dummy:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def serve(self) -> None:
            pass

    monkeypatch.setattr(granian, "Granian", Dummy)
    # serve points links where it listens unless told: keep this process's settings as they are.
    monkeypatch.setenv("TIDINGS_BASE_URL", settings.TIDINGS_BASE_URL)
    settings.STATIC_ROOT = str(tmp_path / "static")
    settings.TIDINGS_REDIS_URL = ""
    err = io.StringIO()
    call_command("serve", "--workers", "2", stdout=io.StringIO(), stderr=err)
    assert "2 web processes without TIDINGS_REDIS_URL" in err.getvalue()
    err = io.StringIO()
    call_command("serve", "--workers", "1", stdout=io.StringIO(), stderr=err)
    assert "TIDINGS_REDIS_URL" not in err.getvalue()


@pytest.mark.parametrize("args", [("help",), ("diffsettings", "--all")])
def test_a_reader_that_went_away_ends_the_command_quietly(tmp_path, args):
    """``tidings … | head``: once the reader has gone, the command ends as Unix tools do (no
    BrokenPipeError traceback; status 141, as if by SIGPIPE)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first write
    env = {**os.environ, "TIDINGS_DATA_DIR": str(tmp_path)}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "tidings", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert "BrokenPipeError" not in result.stderr and "Traceback" not in result.stderr, (
        result.stderr[-2000:]
    )
    assert result.returncode == 141
