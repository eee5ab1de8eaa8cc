"""TIDINGS_LOG_FORMAT=json: one JSON object per line, tokens still redacted, no stray extras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging, django
django.setup()
class Request:
    def __repr__(self):
        return "<WSGIRequest: GET '/p/abcdefghijklmnopqrstuvwxyz0123456789'>"
logging.getLogger("django.request").warning(
    "Not Found: %s", "/p/abcdefghijklmnopqrstuvwxyz0123456789",
    extra={"status_code": 404, "request": Request()},
)
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("tidings.test").exception("it failed")
"""


def _run(
    tmp_path: Path, fmt: str, script: str = SCRIPT, **extra: str
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(
        DJANGO_SETTINGS_MODULE="tidings.settings",
        TIDINGS_DATA_DIR=str(tmp_path),
        TIDINGS_LOG_FORMAT=fmt,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **extra,
    )
    return subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )


def test_the_screening_engine_s_log_lines_are_json_lines_too(tmp_path):
    """spaCy (the screening of free text, built at a process's first sign-up or enquiry) has a
    handler of its own: its lines came out twice, once as plain "[time] [INFO] Created
    vocabulary" text among the JSON lines."""
    script = (
        "import logging, django\n"
        "django.setup()\n"
        "from tidings.policy.screening_terms import build_nlp\n"
        "build_nlp()\n"
        "logging.getLogger('spacy').warning('a warning of spaCy\\'s')\n"
    )
    result = _run(tmp_path, "json", script, TIDINGS_LOG_LEVEL="DEBUG")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # each one JSON
    assert [line["message"] for line in lines if line["logger"] == "spacy"] == [
        "a warning of spaCy's"  # once, and not its INFO chatter
    ]


def test_json_log_lines_carry_time_level_logger_and_the_redacted_message(tmp_path):
    result = _run(tmp_path, "json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    first = lines[0]
    assert first["level"] == "WARNING"
    assert first["logger"] == "django.request"
    assert first["message"] == "Not Found: /p/[token]"
    assert first["status"] == 404
    assert set(first) == {"time", "level", "logger", "message", "status"}
    assert "abcdefghijklmnop" not in result.stderr  # the request object is not dumped
    assert lines[1]["message"] == "it failed"
    assert "ValueError: boom" in lines[1]["exc_info"]


def test_plain_remains_the_default_and_a_bad_value_is_refused_in_one_line(tmp_path):
    plain = _run(tmp_path, "plain")
    assert "WARNING django.request: Not Found: /p/[token]" in plain.stderr
    bad = _run(tmp_path, "xml")
    assert bad.returncode != 0
    assert "TIDINGS_LOG_FORMAT: expected plain or json, got 'xml'" in bad.stderr


def test_debug_logging_is_not_flooded_by_the_markdown_parser(tmp_path):
    """TIDINGS_LOG_LEVEL=DEBUG (to watch background jobs) logged a dozen markdown-it lines for
    every Markdown text rendered: every message of a campaign."""
    script = (
        "import logging, django\n"
        "django.setup()\n"
        "from markdown_it import MarkdownIt\n"
        "MarkdownIt('commonmark').render('# News\\n\\nWe shipped *it*.')\n"
        "logging.getLogger('tidings.test').debug('still shown')\n"
    )
    result = _run(tmp_path, "json", script, TIDINGS_LOG_LEVEL="DEBUG")

    assert result.returncode == 0, result.stderr
    loggers = [json.loads(line)["logger"] for line in result.stderr.splitlines()]
    assert "tidings.test" in loggers
    assert not [name for name in loggers if name.startswith("markdown_it")]
