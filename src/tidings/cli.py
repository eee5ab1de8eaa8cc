"""The ``tidings`` command.  Thin: every subcommand calls into the apps.

``tidings policy ...`` works without a database or a configured installation (it only reads
TOML); everything else is a Django management command (``tidings serve``, ``tidings worker``,
``tidings demo``, ``tidings migrate``, ``tidings help`` ...).
"""

from __future__ import annotations

import os
import re
import select
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    for number, arg in enumerate(args, start=1):
        # Bytes that are not UTF-8 arrive as lone surrogates (PEP 383): a file's name may be such
        # bytes, but a name, address or option value sent on to the database cannot be stored
        # or looked up (a UnicodeEncodeError traceback).
        if not _is_text(arg) and not Path(arg).exists():
            print(f"tidings: argument {number} is not UTF-8 text", file=sys.stderr)
            return 2
    if args and args[0] == "policy":
        from tidings.policy.commands import run

        return run(args[1:])

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tidings.settings")
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from tidings.policy import PolicyError

    try:
        django.setup()
    except PolicyError as exc:
        print("\n".join(f"tidings: {line}" for line in exc.lines()), file=sys.stderr)
        return 1
    except ImproperlyConfigured as exc:
        print(f"tidings: {exc}", file=sys.stderr)
        return 1
    from django.core.management.base import CommandError, SystemCheckError
    from django.db import DatabaseError

    command = args[0] if args else ""
    argv = ["tidings", *args]
    # A command's error is one line: "tidings import: no such file: x.csv".  Django would print
    # it as "CommandError: ..." (its class name, which means nothing to the person at the
    # terminal); it lets the error through to us only under --traceback, so we ask for that and
    # print the line ourselves.  Someone who typed --traceback gets Django's traceback.
    ours = command and not command.startswith("-") and command != "help"
    if ours and "--traceback" not in args:
        argv = ["tidings", command, "--traceback", *args[1:]]
        from tidings.lib.arguments import note_traceback_added

        note_traceback_added()
    reader_gone = False
    try:
        execute_from_command_line(argv)
    except CommandError as exc:
        if not ours or "--traceback" in args:
            raise
        if isinstance(exc, SystemCheckError):  # Django's report: a header, sections, hints
            print("\n".join(_system_check_lines(str(exc))), file=sys.stderr)
        else:
            print(f"tidings {command}: {exc}", file=sys.stderr)
        return exc.returncode
    except DatabaseError as exc:
        reader_gone = _reader_went_away(exc)
        problem = None if reader_gone else _database_problem(args[0] if args else "")
        if problem is None and not reader_gone:
            raise
        if problem is not None:
            print(f"tidings: {problem}", file=sys.stderr)
            return 1
    except Exception as exc:
        reader_gone = _reader_went_away(exc)
        if not reader_gone:
            raise
    if reader_gone:  # out of the except clause: the traceback and its frames are let go
        return _quiet_after_broken_pipe()
    return 0


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _system_check_lines(report: str) -> list[str]:
    """One line per error of Django's system-check report, with its hint: "tidings:
    (tidings.E001) SECRET_KEY: … — fix: …".  Django's own report spreads one error over six lines
    (a header, a section title, the error, its hint, a count), and its "?:" and "HINT" mean
    nothing to the person starting a server.  A report in another shape is printed as it is."""
    lines: list[str] = []
    serious = False
    for raw in _ANSI.sub("", report).splitlines():
        line = raw.strip()
        if line in {"CRITICALS:", "ERRORS:"} or line in {"WARNINGS:", "INFOS:", "DEBUGS:"}:
            serious = line in {"CRITICALS:", "ERRORS:"}
        elif serious and line.startswith("HINT:") and lines:
            lines[-1] += " — fix: " + line.removeprefix("HINT:").strip()
        elif serious and ": (" in line:
            source, _, message = line.partition(": ")
            lines.append(f"tidings: {message}" if source == "?" else f"tidings: {line}")
    return lines or [report]


def _reader_went_away(exc: BaseException | None) -> bool:
    """Whether this error comes from the reader of our output going away (``tidings … | head``):
    a BrokenPipeError in the chain (or an error raised while cleaning up after one), and our
    standard output is a pipe with no reader — not a socket of serve's or worker's that broke
    while a real error was being raised."""
    seen, broken = 0, False
    while exc is not None and seen < 10 and not broken:
        broken = isinstance(exc, BrokenPipeError)
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    if not broken:
        return False
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll(), or stdout is not a file
        return False


def _quiet_after_broken_pipe() -> int:
    """End as a Unix tool does when its reader has gone: no traceback, status 141 (SIGPIPE).
    Not by restoring SIGPIPE's default action, which would also kill ``serve`` and ``worker``
    when a client or SMTP peer closes a socket.  Python flushes stdout again at exit: point it
    at /dev/null first (the recipe in Python's signal documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def _database_problem(command: str) -> str | None:
    """One line for a database error a person can act on: the server cannot be reached, or its
    tables are missing or behind the code (``tidings migrate`` not run).  None for anything else,
    which keeps its traceback (its message may hold data, so it is never summarised here)."""
    from django.db import DatabaseError, connection
    from django.db.migrations.executor import MigrationExecutor

    try:
        connection.close()
        connection.ensure_connection()
    except DatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot connect to the database ({connection.vendor}): {reason}"
    if command == "migrate":
        return None
    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return None
    if pending:
        return (
            f"the database is not set up for this version ({len(pending)} migration"
            f"{'' if len(pending) == 1 else 's'} not applied): run `tidings migrate` first"
        )
    return None


def _is_text(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
