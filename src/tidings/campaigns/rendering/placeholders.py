"""Keeping Jinja tags intact through Markdown, nh3 and css-inline: tags are swapped for inert
placeholders first (HTML comments between elements, plain tokens in attribute values) and put back
afterwards."""

from __future__ import annotations

import re

# One Jinja tag: an expression, a statement or a comment.  Strings inside may hold "}}" or "%}".
JINJA = re.compile(
    r"""\{\{(?:[^}'"]|'[^']*'|"[^"]*"|\}(?!\}))*\}\}"""
    r"""|\{%(?:[^%'"]|'[^']*'|"[^"]*"|%(?!\}))*%\}"""
    r"""|\{\#.*?\#\}""",
    re.S,
)
CONTENT = re.compile(r"\{\{-?\s*content\s*-?\}\}")
RAW_TAG = re.compile(r"\{%-?\s*(?:raw|endraw)\b")
TAG_START = re.compile(r"\{[{%#]")
BODY_START = "<!--tidings:body-->"
BODY_END = "<!--/tidings:body-->"
BODY_MARKERS = re.compile(r"<!--/?tidings:body-->")
_RAW_TEXT_TAGS = frozenset({"script", "style", "title", "textarea", "xmp", "noscript"})
_TEXT_EVENT = re.compile(r"<(!--|/?[A-Za-z]|[!?])")
_TAG_NAME = re.compile(r"</?([A-Za-z][^\s/>]*)")
_TAG_EVENT = re.compile(r"[\"'>]")


class JinjaInTag(Exception):
    def __init__(self, offset: int, tag: str) -> None:
        super().__init__(tag)
        self.offset = offset
        self.tag = tag


def _html_contexts(skeleton: str, starts: list[int]) -> list[str]:
    """The HTML context at each (ascending) offset: "text" (between elements), "value" (in an
    attribute value), "tag" (elsewhere inside a tag), "comment" or "raw" (script, style, title)."""
    found: list[str] = []
    n, i, k = len(skeleton), 0, 0
    state, tag_name, closing = "text", "", False

    def record(end: int, kind: str) -> None:
        nonlocal k
        while k < len(starts) and starts[k] < end:
            if kind == "tag":
                before = skeleton[max(0, starts[k] - 200) : starts[k]].rstrip()
                found.append("value" if before.endswith("=") else "tag")
            else:
                found.append(kind)
            k += 1

    while k < len(starts):
        if state == "text":
            m = _TEXT_EVENT.search(skeleton, i)
            record(m.start() if m else n, "text")
            if m is None:
                break
            if m.group(1) == "!--":
                state, i = "comment", m.end()
                continue
            name = _TAG_NAME.match(skeleton, m.start())
            tag_name = name.group(1).lower() if name else ""
            closing = m.group(1) == "/"
            state, i = "tag", m.end()
        elif state == "tag":
            m = _TAG_EVENT.search(skeleton, i)
            record(m.start() if m else n, "tag")
            if m is None:
                break
            i = m.end()
            if m.group() == ">":
                raw = not closing and tag_name in _RAW_TEXT_TAGS
                state = "raw" if raw else "text"
            else:
                end = skeleton.find(m.group(), i)
                record(end if end >= 0 else n, "value")
                if end < 0:
                    break
                i = end + 1
        elif state == "comment":
            end = skeleton.find("-->", i)
            record(end if end >= 0 else n, "comment")
            if end < 0:
                break
            state, i = "text", end + 3
        else:  # raw text: up to the matching end tag
            m = re.compile(rf"</{re.escape(tag_name)}\b", re.I).search(skeleton, i)
            record(m.start() if m else n, "raw")
            if m is None:
                break
            state, closing, i = "tag", True, m.start() + 2
    found.extend("text" for _ in range(len(starts) - len(found)))
    return found


def _skeleton(source: str, spans: list[re.Match[str]]) -> str:
    """The source with each Jinja tag blanked out (by zeros: not a letter, quote or bracket)."""
    pieces, last = [], 0
    for m in spans:
        pieces.append(source[last : m.start()])
        pieces.append("0" * (m.end() - m.start()))
        last = m.end()
    pieces.append(source[last:])
    return "".join(pieces)


class Placeholders:
    """Swaps Jinja tags for inert tokens ("tdgj12x") and back."""

    def __init__(self, *sources: str) -> None:
        seen = "".join(sources).lower()
        prefix = "tdgj"
        while prefix in seen:
            prefix += "q"
        self.prefix = prefix
        self.tags: list[str] = []
        self._pattern = re.compile(
            rf"<!--{prefix}(\d+)x-->|&lt;!--{prefix}(\d+)x--&gt;|{prefix}(\d+)x"
        )

    def token(self, tag: str) -> str:
        self.tags.append(tag)
        return f"{self.prefix}{len(self.tags) - 1}x"

    def plain(self, source: str) -> str:
        """Every tag as a bare token (for text, attribute values, Markdown inline)."""
        return JINJA.sub(lambda m: self.token(m.group()), source)

    def html(self, source: str) -> str:
        """Tags between elements become comments (which parsers keep in place, even inside a
        <table>); tags in attribute values, comments and raw text become bare tokens.  A tag
        elsewhere inside an HTML tag raises JinjaInTag."""
        spans = list(JINJA.finditer(source))
        contexts = _html_contexts(_skeleton(source, spans), [m.start() for m in spans])
        out, last = [], 0
        for m, context in zip(spans, contexts, strict=True):
            if context == "tag":
                raise JinjaInTag(m.start(), m.group())
            out.append(source[last : m.start()])
            token = self.token(m.group())
            out.append(f"<!--{token}-->" if context == "text" else token)
            last = m.end()
        out.append(source[last:])
        return "".join(out)

    def markdown(self, source: str) -> str:
        """Bare tokens, except that a line holding only statements ({% … %}, {# … #}) becomes
        HTML comments on a line of their own: an HTML block, so it does not join a paragraph
        or a list item."""
        lines = []
        for line in source.split("\n"):
            stripped = line.strip()
            spans = list(JINJA.finditer(stripped))
            only_statements = (
                spans
                and not JINJA.sub("", stripped).strip()
                and all(not m.group().startswith("{{") for m in spans)
            )
            if only_statements:
                lines.append("".join(f"<!--{self.token(m.group())}-->" for m in spans))
            else:
                lines.append(self.plain(line))
        return "\n".join(lines)

    def restore(self, text: str) -> tuple[str, set[int]]:
        used: set[int] = set()

        def back(m: re.Match[str]) -> str:
            index = int(m.group(1) or m.group(2) or m.group(3))
            used.add(index)
            return self.tags[index]

        return self._pattern.sub(back, text), used


def escape_braces(text: str) -> str:
    """Literal text (no Jinja tags left in it) made safe to compile: "{{" prints as "{{"."""
    return re.sub(r"\{(?=[{%#])", "{{ '{' }}", text)
