"""The ``tidings`` command.  Thin: every subcommand calls into the apps.

``tidings policy ...`` works without a database or a configured installation (it only reads
TOML); everything else is a Django management command (``tidings serve``, ``tidings worker``,
``tidings demo``, ``tidings migrate``, ``tidings help`` ...).
"""

from __future__ import annotations

import os
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
    execute_from_command_line(["tidings", *args])
    return 0


def _is_text(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
