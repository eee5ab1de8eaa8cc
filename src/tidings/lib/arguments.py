"""argparse types for command options: a value a command cannot use is refused while the
arguments are read (one line, exit status 2), never later as a traceback from what it feeds."""

from __future__ import annotations

import argparse
import ipaddress
import math

# Kept here, not in cli.py: run as `python -m tidings.cli`, that module is __main__, and a
# command importing tidings.cli would read a second copy that was never set.
_traceback_added = False


def note_traceback_added() -> None:
    """``tidings`` (cli.py) added ``--traceback`` to the command line itself."""
    global _traceback_added
    _traceback_added = True


def traceback_added() -> bool:
    """True when this process's command got ``--traceback`` from ``tidings``, not from the
    person: a command that acts on it for its own output (the doctor) acts as without it."""
    return _traceback_added


def _whole(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def port(text: str) -> int:
    """A TCP port to listen on: 1 to 65535."""
    value = _whole(text, "a port number")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {value}")
    return value


def positive_int(text: str) -> int:
    """A count of at least 1 (processes, threads)."""
    value = _whole(text, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def days_ahead(text: str) -> int:
    """A number of days to look ahead: 1 to 365 (a year, as the journey page's simulator)."""
    value = _whole(text, "a number of days")
    if not 1 <= value <= 365:
        raise argparse.ArgumentTypeError(f"1 to 365 days, not {value}")
    return value


def seconds(text: str) -> float:
    """A duration in seconds: a finite number, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 seconds or more, not {text}")
    return value


def listen_address(text: str) -> str:
    """An IP address to listen on (the web server binds to addresses, not names)."""
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"an IP address to listen on, such as 127.0.0.1, 0.0.0.0 or ::1, not {text!r}"
        ) from None
