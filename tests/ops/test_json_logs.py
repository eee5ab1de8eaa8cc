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


def test_every_line_tidings_serve_writes_is_json_granian_s_included(tmp_path):
    """granian has loggers and a handler of its own: "[INFO] Starting granian (main PID: …)",
    "[INFO] Spawning worker-1", "[INFO] Stopped worker-1" came out as plain text among the JSON
    lines (on standard output), as did serve's own "tidings is serving on …" and the system
    check's "no issues" line.  A log shipper that parses each line as JSON choked on them."""
    import signal

    from tests.web.serving import free_port, wait_until_serving

    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.pop("DATABASE_URL", None)
    env.update(TIDINGS_DATA_DIR=str(tmp_path), TIDINGS_LOG_FORMAT="json")
    migrate = subprocess.run(
        [sys.executable, "-m", "tidings", "migrate", "-v0"], env=env, cwd=ROOT, timeout=300
    )
    assert migrate.returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tidings", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_serving(server, port)
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()

    lines = [line for line in (out + err).splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    by_logger = {}
    for record in records:
        by_logger.setdefault(record["logger"], []).append(record["message"])
    granian = [m for name, ms in by_logger.items() if name.startswith("_granian") for m in ms]
    assert any(m.startswith("Starting granian") for m in granian), by_logger
    assert any("worker-2" in m for m in granian)  # the web worker processes' lines too
    assert any(m.startswith("tidings is serving on") for m in by_logger["tidings.serve"])
    assert "Not Found: /no-such-page" in by_logger["django.request"]


def test_granian_s_lines_follow_the_log_level():
    """With TIDINGS_LOG_LEVEL=WARNING granian's INFO lines ("Starting granian") are left out, as
    tidings' own: its logger's level is the root logger's."""
    from granian.log import LogLevels

    from tidings.web.management.commands.serve import granian_log_config, granian_log_level

    assert granian_log_level({"root": {"level": "WARNING"}}) == LogLevels.warning
    assert granian_log_level({"root": {"level": "DEBUG"}}) == LogLevels.debug
    assert granian_log_level({}) == LogLevels.info
    config = granian_log_config({"root": {"handlers": ["console"]}, "loggers": {}})
    assert config["loggers"]["_granian"] == {"handlers": [], "propagate": True}
