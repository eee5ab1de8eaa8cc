"""CSS that runs code, removed from a message's style attributes and its layout's stylesheet.

nh3 keeps a ``style`` attribute whole (it checks names, not CSS), and css-inline copies the
layout's rules as they are; neither knows CSS that runs code: Internet Explorer's and old
Outlook's ``expression()``, ``behavior``/``-moz-binding`` and ``url(javascript:…)``.  No
maintained Python CSS sanitiser is among our dependencies (tinycss2 would parse, not judge), so
this is a short hand-written filter: each declaration is read as a browser would (comments
dropped, CSS escapes decoded, case and spaces ignored) and dropped whole when it holds one of
those, or a ``url()`` to anything but an http(s), cid, fragment or image data address.
"""

from __future__ import annotations

import re

# A declaration: what lies between ";", "{" and "}" (a data: image's own ";" splits it in two
# harmless halves, kept; a url() written across such a split is judged by its first half).
_DECLARATION = re.compile(r"[^;{}]+")
_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.S)
_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})[ \t\r\n\f]?|\\(.)", re.S)
_SPACE = re.compile(r"\s+")
_RUNS_CODE = re.compile(r"expression\(|javascript:|vbscript:|-moz-binding|(?:^|[^-\w])behavior:")
_URL = re.compile(r"url\(['\"]?([^'\")]*)")
_SAFE_URL = re.compile(r"(?:https?:|cid:|#|data:image/)|[^:]*$")


def _unescape(match: re.Match[str]) -> str:
    if match.group(1):
        code = int(match.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"
    return match.group(2)


def _runs_code(declaration: str) -> bool:
    read = _ESCAPE.sub(_unescape, _COMMENT.sub("", declaration))
    read = _SPACE.sub("", read).lower()
    if _RUNS_CODE.search(read):
        return True
    return any(not _SAFE_URL.match(url) for url in _URL.findall(read))


def safe_css(css: str) -> str:
    """``css`` (a style attribute's value or a stylesheet) without the declarations that run
    code; everything else as it was."""
    if "(" not in css and ":" not in css:
        return css
    return _DECLARATION.sub(lambda m: "" if _runs_code(m.group()) else m.group(), css)
