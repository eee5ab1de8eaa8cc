"""Signed tokens from email links never reach the logs."""

import logging
import re

import pytest
from django.urls import URLResolver, get_resolver
from django.urls.converters import IntConverter
from django.urls.resolvers import RoutePattern

from tidings.lib.urltokens import token_params, token_path, token_routes
from tidings.web.log_filters import RedactTokens, redact


def test_tokens_in_paths_are_replaced():
    line = "Not Found: /p/eyJjIjoxMjN9:1vNx8Q:abcdefghijklmnopqrstuvwxyz012345/"
    assert redact(line) == "Not Found: /p/[token]/"
    assert redact("GET /u/AbCdEfGhIjKlMnOpQr HTTP/1.1") == "GET /u/[token] HTTP/1.1"
    assert redact("/privacy and /contacts/12/") == "/privacy and /contacts/12/"


@pytest.mark.django_db
def test_a_404_for_a_token_link_logs_no_token(client, caplog):
    caplog.handler.addFilter(RedactTokens())
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client.get("/p/eyJjIjoxMjN9:1vNx8Q:thisisnotavalidsignatureatall/nope/")
    assert "thisisnotavalid" not in caplog.text


def test_the_console_log_handler_redacts_tokens():
    root = logging.getLogger()
    handlers = [h for h in root.handlers if any(isinstance(f, RedactTokens) for f in h.filters)]
    assert handlers, "settings.LOGGING must attach RedactTokens to the console handler"


def test_invitation_and_password_reset_tokens_are_replaced():
    assert (
        redact("GET /join/MTI/cz8x1a-0b6e1f2c3d4e5f6a7b8c9d0e1f2a3b4c/") == "GET /join/MTI/[token]/"
    )
    assert (
        redact("GET /login/reset/MTI/cz8x1a-0b6e1f2c3d4e5f6a7b8c9d0e1f2a3b4c/")
        == "GET /login/reset/MTI/[token]/"
    )
    assert redact("GET /login/reset/done/") == "GET /login/reset/done/"


# --- the token registry: every token path is redacted, and none is forgotten ----------------
SECRET = "eyJjIjoxMjN9:1vNx8Q:ZXhhbXBsZXNpZ25hdHVyZQ"

# Parameters that are not secrets, by URL name → parameter → why.
HARMLESS: dict[str, dict[str, str]] = {
    "public:signup": {"slug": "a sign-up form's public name, printed on the website"},
    "public:signup-done": {"slug": "the same form's thank-you page: its public name only"},
    "system-emails:edit": {"key": "the name of a system email template (operator page)"},
    "crm:extend": {"section": "the name of a CRM section (operator page)"},
    "password_reset_confirm": {
        "uidb64": "the operator's id, base64: the token next to it is the secret"
    },
    "operator-join": {"uidb64": "the invited operator's id, base64; the token is the secret"},
    "media_public:image": {
        "key": "the content hash of a picture published in emails (anyone who got one sees it)",
        "name": "the picture's file name, as shown in the email",
    },
}
# Whole prefixes whose parameters are ids and names, never secrets.
HARMLESS_PREFIXES: dict[str, str] = {
    "admin/": "the Django admin: app labels, model names and object ids",
    "api/": "REST API paths carry ids; the API token travels in the Authorization header",
    "static/": "file names of static files",
}
HOW_TO_FIX = (
    "If the parameter is a token (a signed value, a key, anything that works as a password), "
    "declare the pattern with tidings.lib.urltokens.token_path(...) instead of path(...), so "
    "the log filter redacts it; if it is harmless, add it to HARMLESS in "
    "tests/web/test_logging.py with the reason."
)


def _walk(resolver=None, prefix="", ns="", chain=()):
    from django.urls import URLPattern

    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{ns}:{entry.namespace}" if ns and entry.namespace else entry.namespace or ns
            yield from _walk(entry, prefix + str(entry.pattern), inner or "", (*chain, entry))
        elif isinstance(entry, URLPattern):
            name = f"{ns}:{entry.name}" if ns and entry.name else entry.name or ""
            yield prefix + str(entry.pattern), name, (*chain, entry)


def _string_params(chain) -> set[str]:
    """Parameters of a pattern (and its includes) that can hold text: everything but <int:>."""
    params = set()
    for level in chain:
        pattern = level.pattern
        if isinstance(pattern, RoutePattern):
            params |= {n for n, c in pattern.converters.items() if not isinstance(c, IntConverter)}
        else:
            params |= {n for n in pattern.regex.groupindex if not re.fullmatch(r".*_?id", n)}
    return params


def unregistered_token_parameters(patterns) -> list[str]:
    problems = []
    for route, name, chain in patterns:
        if any(route.startswith(p) for p in HARMLESS_PREFIXES):
            continue
        declared = token_params(chain[-1])
        for param in sorted(_string_params(chain) - declared):
            if param not in HARMLESS.get(name or route, {}):
                problems.append(f"/{route} ({name}): parameter {param!r}")
    return problems


def test_every_text_parameter_of_every_url_is_a_declared_token_or_known_harmless():
    problems = unregistered_token_parameters(_walk())
    assert problems == [], f"{problems}: {HOW_TO_FIX}"


def test_a_token_pattern_declared_with_plain_path_fails_the_walk():
    from django.urls import path

    def download(request, token):  # pragma: no cover - never called
        raise AssertionError

    forgotten = URLResolver(
        re.compile("^"), [path("exports/<str:token>", download, name="export-download")]
    )
    problems = unregistered_token_parameters(_walk(forgotten, ns="rights"))
    assert problems == ["/exports/<str:token> (rights:export-download): parameter 'token'"]

    declared = URLResolver(
        re.compile("^"), [token_path("exports/<str:token>", download, name="export-download")]
    )
    assert unregistered_token_parameters(_walk(declared, ns="rights")) == []


def test_the_registry_holds_every_link_that_works_as_a_key():
    routes = {r.route for r in token_routes()}
    assert {
        "rights/download/<str:token>",
        "rights/v/<str:token>",
        "demo/change/<str:token>",
        "demo/change/<str:token>/cancel",
        "demo/feed/<str:token>.ics",
        "c/<str:token>",
        "p/<str:token>",
        "u/<str:token>",
        "t/o/<str:token>",
        "t/c/<str:token>",
        "login/reset/<uidb64>/<token>/",
        "join/<uidb64>/<token>/",
    } <= routes


def example(route: str) -> str:
    """The route with SECRET for its token and harmless values for the rest."""
    return "/" + re.sub(
        r"<(?:\w+:)?(\w+)>", lambda m: SECRET if m.group(1) == "token" else "MTI", route
    )


@pytest.mark.parametrize("route", sorted(r.route for r in token_routes()))
def test_every_registered_token_path_is_redacted_wherever_a_log_line_quotes_it(route):
    path = example(route)
    for line in (
        f"Not Found: {path}",
        f'"GET {path} HTTP/1.1" 404 1234',
        f"GET {path}?utm_source=x HTTP/1.1",
        f"link https://news.example.com{path}, then",
        f"Forbidden (CSRF cookie not set.): {path}/extra/",
    ):
        cleaned = redact(line)
        assert SECRET not in cleaned, cleaned
        assert "[token]" in cleaned
    assert redact(f"GET {path} HTTP/1.1").endswith(" HTTP/1.1")


def test_the_calendar_feed_keeps_its_suffix_and_other_paths_are_left_alone():
    assert redact(f"GET /demo/feed/{SECRET}.ics") == "GET /demo/feed/[token].ics"
    assert redact("GET /demos/feed/ and /audience/contacts/12/") == (
        "GET /demos/feed/ and /audience/contacts/12/"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        f"/rights/download/{SECRET}",
        f"/rights/v/{SECRET}/nope",
        f"/demo/change/{SECRET}/cancel/x",
        f"/demo/feed/{SECRET}.icsx",
        f"/p/{SECRET}/nope/",
    ],
)
def test_a_request_for_a_token_link_logs_no_token(client, caplog, path):
    caplog.handler.addFilter(RedactTokens())
    with caplog.at_level(logging.DEBUG):
        client.get(path)
        logging.getLogger("tidings.test").warning("a worker quotes %s", path)
    assert caplog.records, "nothing was logged"
    assert SECRET not in caplog.text


def test_the_console_shows_failed_tasks_but_not_routine_runs():
    """`make demo`'s terminal was ~15 lines a minute of "state=RUNNING/SUCCESSFUL" for periodic
    jobs; a failed task must still be shown, with its traceback."""
    import io
    import sys

    from tidings.web.log_filters import RoutineTaskLines

    console = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RoutineTaskLines) for f in h.filters)
    )
    # The console handler's own filters on a handler of our own (its stream may be one that
    # pytest's capturing has closed by now).
    stream = io.StringIO()
    shown = logging.StreamHandler(stream)
    for each in console.filters:
        shown.addFilter(each)

    def emit(name, level, message, exc_info=None):
        shown.handle(
            logging.makeLogRecord(
                {
                    "name": name,
                    "levelno": level,
                    "levelname": logging.getLevelName(level),
                    "msg": message,
                    "exc_info": exc_info,
                }
            )
        )

    emit("django.tasks", logging.INFO, "Task id=rt4f1c path=tidings.x.periodic state=RUNNING")
    emit("django.tasks", logging.INFO, "Task id=rt4f1c path=tidings.x.periodic state=SUCCESSFUL")
    try:
        raise ValueError("boom")
    except ValueError:
        emit("django.tasks", logging.ERROR, "Task id=b2 state=FAILED", sys.exc_info())
    emit("tidings.campaigns.engine", logging.INFO, "delivery worker started")
    text = stream.getvalue()
    assert "rt4f1c" not in text  # an id no checkout path holds
    assert "state=FAILED" in text and "ValueError: boom" in text
    assert "delivery worker started" in text


def test_building_the_screening_engine_logs_nothing_at_info(caplog):
    """Each `tidings inbound process` printed ten "Loaded recognizer" lines on stderr."""
    from tidings.policy.screening import Screener

    with caplog.at_level(logging.INFO):
        Screener()._get_engine()  # a new engine: the shared one may be built already
    assert not [r for r in caplog.records if r.name.startswith("presidio")]


@pytest.mark.parametrize(
    ("request_kwargs", "reason"),
    [
        ({"data": "x" * 2048, "content_type": "text/plain"}, "form limit"),
        ({"HTTP_HOST": "evil.example"}, "Invalid HTTP_HOST header"),
    ],
)
def test_a_refused_request_is_one_warning_line_without_a_traceback(
    client, settings, request_kwargs, reason
):
    """An oversized form or a foreign Host header from anyone on the internet was an ERROR with
    Django's traceback: log noise and false alerts, although the visitor just got a 413/400."""
    import io

    from tidings.web.log_filters import RefusedRequestLines

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    console = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RefusedRequestLines) for f in h.filters)
    )
    stream = io.StringIO()
    shown = logging.StreamHandler(stream)
    shown.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    for each in console.filters:
        shown.addFilter(each)
    root = logging.getLogger()
    root.addHandler(shown)
    try:
        response = client.post("/contact", **request_kwargs)
    finally:
        root.removeHandler(shown)

    assert response.status_code in (400, 413)
    lines = [line for line in stream.getvalue().splitlines() if "django.security" in line]
    assert (
        len(lines) == 1 and lines[0].startswith("WARNING django.security.") and reason in lines[0]
    )
    assert "Traceback" not in stream.getvalue()
