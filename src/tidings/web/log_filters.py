"""Keep live tokens out of log lines.

Links in emails and on pages carry tokens (``/u/<token>``, ``/rights/download/<token>``,
``/demo/feed/<token>.ics`` ...) that work as keys.  Every URL pattern that carries one declares
it with ``tidings.lib.urltokens.token_path``; this filter replaces the token in any path of a
registered pattern that a log message quotes ("Not Found: /p/...", a worker's error, ...).
"""

from __future__ import annotations

import logging
import re
import threading

from tidings.lib import urltokens

# Used only while the URL registry cannot be built (apps still loading, a broken URLconf): any
# long path segment is treated as a token rather than logged.
_FALLBACK = re.compile(r"(/)[^/\s\"'?#<>]{16,}")
_building = threading.local()


def redact(text: str) -> str:
    """``text`` with the token of every registered token path replaced by ``[token]``."""
    from django.apps import apps

    if "/" not in text:
        return text
    if not apps.ready or getattr(_building, "active", False):
        return _FALLBACK.sub(r"\1[token]", text)
    _building.active = True  # building the registry imports the URLconf, which may log
    try:
        return urltokens.redact(text)
    except Exception:
        return _FALLBACK.sub(r"\1[token]", text)
    finally:
        _building.active = False


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class RoutineTaskLines(logging.Filter):
    """Drop django.tasks' "state=RUNNING" / "state=SUCCESSFUL" lines (INFO) below DEBUG.

    The worker runs about twenty periodic jobs every few minutes, each logging two lines: in a
    terminal running ``make demo`` they buried everything else (~15 lines a minute of routine).
    django-tasks-db's worker sets the ``django.tasks`` logger's own level from its verbosity, so
    settings cannot quiet it; this handler filter does.  A failed task is logged at ERROR with its
    traceback and always passes; ``TIDINGS_LOG_LEVEL=DEBUG`` shows the routine lines again.
    """

    def __init__(self, show_below: int = logging.WARNING):
        super().__init__()
        self.show_below = show_below

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "django.tasks" or record.levelno >= logging.WARNING:
            return True
        return record.levelno >= self.show_below


class InterruptedTaskLines(logging.Filter):
    """Drop django.tasks' "Task id=… state=FAILED" line (ERROR, with a ``StopNow`` traceback) for
    the task a second stop signal interrupts.

    django-tasks-db records the interruption as a failure and logs it so before
    ``web.task_worker`` puts the task back in the queue (READY: it runs again on the next worker)
    and says so in a WARNING line, "task … interrupted and queued again".  The ERROR line told an
    operator reading the log, or alerting on ERROR, that a task had failed when none had.  Any
    other failure of a task keeps its ERROR line and traceback.  (Matched by name: this module is
    loaded with the settings, before the task worker's models can be imported.)"""

    INTERRUPTION = "tidings.web.task_worker.StopNow"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "django.tasks" or not record.exc_info or not record.exc_info[0]:
            return True
        kind = record.exc_info[0]
        return f"{kind.__module__}.{kind.__qualname__}" != self.INTERRUPTION


class RefusedRequestLines(logging.Filter):
    """Requests Django refuses as suspicious, as one WARNING line each, without a traceback.

    Django logs them at ERROR with the stack of the refusal (``django.security.<reason>``): a
    form body over the limit (``RequestDataTooBig``, 413), too many fields, a Host header that
    is not ours (``DisallowedHost``: every scanner on the internet sends some).  Anyone can send
    these, so they filled the log with tracebacks and set off alerts on ERROR lines, although
    nothing failed: the visitor got the 400 or 413 page.  A CSRF refusal is already a WARNING.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security.") and record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True
