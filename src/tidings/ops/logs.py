"""JSON log lines (``TIDINGS_LOG_FORMAT=json``), with python-json-logger.

Only named fields go out: time, level, logger, message, and the exception's trace when there is
one.  Extra attributes some libraries attach to records (Django puts the whole ``request`` on
``django.request`` records, whose text holds the path and so any token in it) are left out: the
token-redacting filter (``web.log_filters``) cleans the message, not arbitrary objects.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter as _Base

FIELDS = ("asctime", "levelname", "name", "message")


class JsonFormatter(_Base):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("fmt", list(FIELDS))
        kwargs.setdefault(
            "rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"}
        )
        kwargs.setdefault("timestamp", False)
        super().__init__(*args, **kwargs)

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_data, record, message_dict)
        # Keep the named fields (and the trace) only: drop every "extra" attribute.
        for key in list(log_data):
            if key not in {"time", "level", "logger", "message", "exc_info", "stack_info"}:
                del log_data[key]
        status = getattr(record, "status_code", None)
        if isinstance(status, int):
            log_data["status"] = status
