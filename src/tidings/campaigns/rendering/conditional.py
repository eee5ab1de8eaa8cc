"""What Outlook reads inside its conditional comments, sanitised like the rest of a message.

Outlook for Windows renders the content of ``<!--[if mso]>…<![endif]-->`` as HTML; every other
program sees a comment.  nh3 keeps comments as they are (we need them: Outlook's ghost tables,
which MJML writes, and our placeholders), and it cannot clean what is inside one: that is a
fragment of unbalanced tags (a table opened in one comment is closed in the next), which any
HTML parser would close or drop.  So this short tokenizer is hand-written: each tag inside is
kept only when nh3 would keep it (the same tag and attribute lists) or it is Outlook's own VML
or Office markup (``v:``, ``o:``, ``w:``), and only with attributes that carry no code (no event
handlers, no address outside http(s)/mailto/tel, style through ``safe_css``); a script, style or
similar element goes with its content.  Text between tags is left alone (it is text).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Set

from .styles import safe_css

CONDITIONAL = re.compile(r"(<!--\[if\b[^\]]*\]>)(.*?)(<!\[endif\]-->)", re.I | re.S)
_TAG = re.compile(r"<(/?)([A-Za-z][\w:.-]*)((?:\"[^\"]*\"|'[^']*'|[^'\">])*)>", re.S)
_ATTRIBUTE = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_WITH_CONTENT = re.compile(
    r"<(script|style|iframe|object|embed|noscript|template|textarea|title)\b.*?"
    r"(?:</\1\s*>|$)",
    re.I | re.S,
)
_OFFICE = ("v:", "o:", "w:")
_URL_ATTRIBUTES = {"href", "src", "background", "action", "lowsrc", "dynsrc", "data", "cite"}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


def _safe_url(value: str, schemes: Set[str]) -> bool:
    read = _INVISIBLE.sub("", html.unescape(value)).lower()
    scheme = _SCHEME.match(read)
    return scheme is None or scheme.group(1) in schemes


def _attributes(
    tag: str, text: str, allowed: Mapping[str, Set[str]], schemes: Set[str], office: bool
) -> str:
    kept = []
    for name, raw in _ATTRIBUTE.findall(text):
        lower = name.lower()
        if lower.startswith("on") or not (
            office or lower in allowed.get("*", ()) or lower in allowed.get(tag, ())
        ):
            continue
        value = html.unescape(raw[1:-1] if raw[:1] in "\"'" else raw)
        if lower in _URL_ATTRIBUTES and not _safe_url(value, schemes):
            continue
        if lower == "style":
            value = safe_css(value).strip()
            if not value:
                continue
        kept.append(f' {name}="{html.escape(value, quote=True)}"')
    return "".join(kept)


def sanitise_conditional_comments(
    document: str, tags: Set[str], attributes: Mapping[str, Set[str]], schemes: Set[str]
) -> str:
    """``document`` with the inside of each Outlook conditional comment cleaned."""

    def tag(match: re.Match[str]) -> str:
        closing, name, rest = match.groups()
        lower = name.lower()
        office = lower.startswith(_OFFICE)
        if not office and lower not in tags:
            return ""
        if closing:
            return f"</{name}>"
        self_closing = " /" if rest.rstrip().endswith("/") else ""
        kept = _attributes(lower, rest.rstrip("/"), attributes, schemes, office)
        return f"<{name}{kept}{self_closing}>"

    def inside(match: re.Match[str]) -> str:
        opening, content, closing = match.groups()
        if "<" not in content:
            return match.group()
        content = _WITH_CONTENT.sub("", content)
        return opening + _TAG.sub(tag, content) + closing

    return CONDITIONAL.sub(inside, document) if "[if" in document else document
