"""The one registry of URL patterns that carry live tokens, and the redaction built from it.

A link such as ``/rights/download/<token>`` or ``/u/<token>`` *is* the key to someone's data or
subscription, so it must not be written to a log.  Rather than a list of path prefixes kept by
hand next to the log filter (which forgot ``/rights/download/`` and ``/demo/feed/``), each URL
pattern that carries a token says so where it is defined::

    token_path("download/<str:token>", views.download, name="download")

``token_routes()`` walks the project's URL resolver and turns every pattern declared this way —
with the prefixes of the ``include()`` it sits under — into a regular expression that finds the
path in any text; ``redact()`` replaces the token parts with ``[token]``.  ``tests/web/
test_logging.py`` walks the resolver too and fails on any pattern with a string-like parameter
that is neither declared here nor listed there as harmless.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, path

PLACEHOLDER = "[token]"
#: The attribute ``token_path`` sets on a pattern: the names of its token parameters.
ATTRIBUTE = "tidings_token_params"

# Characters that end a path in a log line: whitespace, quotes, query, fragment, brackets.
_STOP = r"/\s\"'?#<>\[\]"


def token_path(
    route: str,
    view: Callable[..., Any],
    kwargs: dict[str, Any] | None = None,
    name: str | None = None,
    *,
    tokens: Iterable[str] = ("token",),
) -> URLPattern:
    """``django.urls.path`` for a pattern whose ``tokens`` parameters are secrets (signed links,
    download keys, feed keys): they are redacted wherever the path is logged."""
    pattern = path(route, view, kwargs, name)
    params = frozenset(tokens)
    missing = params - set(pattern.pattern.converters)
    if missing:
        raise ValueError(f"{route!r} has no parameter {', '.join(sorted(missing))}")
    setattr(pattern, ATTRIBUTE, params)
    return pattern


def token_params(pattern: URLPattern) -> frozenset[str]:
    """The parameters ``pattern`` declared as tokens (empty if none)."""
    return getattr(pattern, ATTRIBUTE, frozenset())


@dataclass(frozen=True)
class Entry:
    """One endpoint of the URL tree: its full route, name, and the patterns leading to it."""

    route: str  # "rights/download/<str:token>"
    name: str  # "rights:download"
    chain: tuple[Any, ...]  # the RoutePattern/RegexPattern of each level, outermost first
    pattern: URLPattern


def walk(
    resolver: URLResolver | None = None, chain: tuple[Any, ...] = (), ns: str = ""
) -> Iterator[Entry]:
    """Every endpoint pattern below ``resolver`` (the project's, by default)."""
    from django.urls import get_resolver

    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{ns}:{entry.namespace}" if ns and entry.namespace else entry.namespace or ns
            yield from walk(entry, (*chain, entry.pattern), inner or "")
        elif isinstance(entry, URLPattern):
            name = f"{ns}:{entry.name}" if ns and entry.name else entry.name or ""
            full = (*chain, entry.pattern)
            yield Entry("".join(str(p) for p in full), name, full, entry)


@dataclass(frozen=True)
class TokenRoute:
    route: str
    regex: re.Pattern[str]
    groups: tuple[str, ...]  # the token parameters' group names
    tail: str  # literal text right after the last token ("" or e.g. ".ics")


def _scanner(entry: Entry, params: frozenset[str]) -> TokenRoute:
    """A regex that finds ``entry``'s path inside a log line, up to its last token."""
    source = ""
    for level in entry.chain:
        part = level.regex.pattern.removeprefix("^")
        part = re.sub(r"(\\Z|\$)$", "", part)
        source += part
    # Parameters stop where a path in running text stops, not only at "/".
    source = source.replace("[^/]+", f"[^{_STOP}]+").replace(".+", f"[^{_STOP[1:]}]+")
    last = max(source.index(f"(?P<{p}>") for p in params)
    close = _group_end(source, last)
    escaped = re.match(r"(?:\\.|[A-Za-z0-9_-])*", source[close:])
    assert escaped is not None  # a starred pattern matches the empty string too
    tail = escaped.group(0).replace("\\", "")
    return TokenRoute(entry.route, re.compile("/" + source[:close]), tuple(sorted(params)), tail)


def _group_end(source: str, start: int) -> int:
    """The index just after the group that opens at ``start``."""
    depth = 0
    i = start
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced pattern {source!r}")


@functools.cache
def _token_routes(urlconf: str) -> tuple[TokenRoute, ...]:
    from django.urls import get_resolver

    return tuple(
        _scanner(entry, token_params(entry.pattern))
        for entry in walk(get_resolver(urlconf))
        if token_params(entry.pattern)
    )


def token_routes() -> tuple[TokenRoute, ...]:
    """Every pattern of the project's URLconf declared with ``token_path``."""
    from django.conf import settings
    from django.urls import get_urlconf

    return _token_routes(get_urlconf() or settings.ROOT_URLCONF)


def _redact_match(route: TokenRoute, match: re.Match[str]) -> str:
    text, offset = match.group(0), match.start()
    spans = sorted(match.span(g) for g in route.groups if match.group(g) is not None)
    out, last = [], 0
    for index, (start, end) in enumerate(spans):
        out.append(text[last : start - offset])
        token = text[start - offset : end - offset]
        keep = route.tail if index == len(spans) - 1 and route.tail else ""
        out.append(PLACEHOLDER + (keep if keep and token.endswith(keep) else ""))
        last = end - offset
    out.append(text[last:])
    return "".join(out)


def redact(text: str, routes: Iterable[TokenRoute] | None = None) -> str:
    """``text`` with the token of every registered token path in it replaced by ``[token]``."""
    if "/" not in text:
        return text
    for route in token_routes() if routes is None else routes:
        text = route.regex.sub(functools.partial(_redact_match, route), text)
    return text
