"""The plain-text part: readable text derived from the HTML of a message.

Paragraphs, "- " lists (numbered for <ol>), links as "text (url)", images as their alt text, table
rows on a line each; hidden elements (the preheader) and the head left out.  It runs at compile
time on the HTML *with the Jinja placeholders still in it* (HTML comments): a tokeniser, not a
tree builder, so each placeholder comes out exactly where it was, and the result is the text
part's Jinja template.  It also runs on a sample render when a layout is checked.

Why not inscriptis (which DESIGN.md suggests if it matches this output): measured on the
benchmark newsletter in the default layout (bench/render.py's, 10.5 KB of HTML; inscriptis 2.7.6,
strict CSS profile, links shown; load average ~3 on 2 cores), it took 4.1 ms a conversion against
2.6 ms here, and its output is worse for an email's text part: the layout is a 600-px table, and
inscriptis lays tables out as a grid, so every line of the message was padded with ~570 trailing
spaces; links come out as Markdown ``[text](url)``; and it drops HTML comments, so it cannot keep
the placeholders and could not derive a text *template* at all (only convert each rendered
message, once per recipient).  So this converter stays; it is ~160 lines because it does only
what email needs.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import unquote

_BLOCK_GAP = {
    "p": 2, "h1": 2, "h2": 2, "h3": 2, "h4": 2, "h5": 2, "h6": 2, "table": 2, "ul": 2, "ol": 2,
    "blockquote": 2, "pre": 2, "dl": 2, "address": 2, "figure": 2,
    "div": 1, "tr": 1, "li": 1, "dt": 1, "dd": 1, "section": 1, "article": 1, "header": 1,
    "footer": 1, "center": 1, "caption": 1, "figcaption": 1, "tbody": 1, "thead": 1, "tfoot": 1,
}  # fmt: skip
_SKIPPED = frozenset({"head", "style", "script", "title", "template", "noscript"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.I)
_PREFORMATTED = re.compile(r"white-space\s*:\s*(?:pre|pre-wrap|break-spaces)\b", re.I)
# What HTML collapses: ASCII white space only.  A no-break space (&nbsp;) is not (Python's \s
# is), and is how Gmail and Outlook write a person's indentation.
_COLLAPSED = re.compile(r"[ \t\n\r\f]+")
_ASCII_SPACE = " \t\n\r\f"
BODY_START_MARK = "\x01"
BODY_END_MARK = "\x02"


class _TextConverter(HTMLParser):
    """HTML to readable plain text: paragraphs, "- " lists, links as "text (url)", images as
    their alt text; hidden elements (the preheader) and the head left out.  A tokeniser, not a
    tree builder, so placeholder comments come out exactly where they were."""

    def __init__(
        self,
        placeholder: re.Pattern[str] | None,
        statements: frozenset[str],
        keep_spacing: bool = False,
    ) -> None:
        super().__init__(convert_charrefs=True)
        self.placeholder = placeholder
        self.statements = statements
        self.keep_spacing = keep_spacing
        self.out: list[str] = []
        self.newlines = -1  # at the end of out; -1: nothing written yet
        # (tag, hidden, right-to-left, preformatted by its style)
        self.open: list[tuple[str, bool, bool, bool]] = []
        self.hidden = 0
        self.rtl = 0  # open elements marked dir="rtl"
        self.pre = 0
        self.links: list[tuple[str, int]] = []
        self.lists: list[list[int]] = []  # per open list: [number or -1 for bullets]

    # output helpers
    def _put(self, piece: str) -> None:
        """Append to the output, keeping count of the newlines it ends with (spaces don't
        count; Jinja statements are appended directly, and so are transparent: "{% for %}"
        between two blocks adds no blank lines)."""
        self.out.append(piece)
        count = 0
        for char in reversed(piece):
            if char == "\n":
                count += 1
            elif char != " ":
                self.newlines = count
                return
        if self.newlines >= 0:  # whitespace before any text does not count
            self.newlines += count

    def _gap(self, lines: int) -> None:
        if 0 <= self.newlines < lines:
            self._put("\n" * (lines - self.newlines))

    def _at_line_start(self) -> bool:
        return self.newlines != 0

    def _mark_direction(self) -> None:
        """A line of right-to-left words (from an element marked dir="rtl") starts with a
        RIGHT-TO-LEFT MARK: plain text has no dir, and a mail program takes a line's direction
        from its first letter, so "{{ contact.first_name }}، شكرا." would otherwise read
        left-to-right, its full stop on the wrong side."""
        if self.rtl and self._at_line_start():
            self._put("\u200f")

    # parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        hidden = bool(_HIDDEN.search(values.get("style") or "")) or tag in _SKIPPED
        rtl = (values.get("dir") or "").lower() == "rtl"
        styled_pre = self.keep_spacing and bool(_PREFORMATTED.search(values.get("style") or ""))
        if tag not in _VOID:
            self.open.append((tag, hidden, rtl, styled_pre))
            self.hidden += hidden
            self.rtl += rtl
            self.pre += styled_pre
        if self.hidden or hidden:
            return
        if tag == "br":
            self._put("\n")
        elif tag == "hr":
            self._gap(1)
            self._put("-" * 40 + "\n")
        elif tag == "img":
            alt = (values.get("alt") or "").strip()
            if alt:
                self._put(alt)
        elif tag in ("ul", "ol"):
            self._gap(1 if self.lists else 2)
            self.lists.append([0 if tag == "ol" else -1])
        elif tag == "li":
            self._gap(1)
            depth = max(len(self.lists) - 1, 0)
            marker = "-"
            if self.lists and self.lists[-1][0] >= 0:
                self.lists[-1][0] += 1
                marker = f"{self.lists[-1][0]}."
            self._put("  " * depth)
            self._mark_direction()
            self._put(marker + " ")
        elif tag == "a":
            self.links.append((values.get("href") or "", len(self.out)))
        elif tag == "pre":
            self._gap(2)
            self.pre += 1
        elif tag in ("td", "th"):
            if not self._at_line_start():
                self._put("  ")
        elif tag in _BLOCK_GAP:
            self._gap(_BLOCK_GAP[tag])

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        # Close up to the matching open element (the serialiser's HTML is well formed).
        while self.open:
            name, hidden, rtl, styled_pre = self.open.pop()
            self.hidden -= hidden
            self.rtl -= rtl
            self.pre -= styled_pre
            if not self.hidden and not hidden:
                self._close(name)
            if name == tag:
                break

    def _close(self, tag: str) -> None:
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if href and not href.startswith("#") and href not in label:
                shown = _shown(href)
                if not label:
                    self._put(shown)
                elif shown != label:
                    self._put(f" ({shown})")
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._gap(1 if self.lists else 2)
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
            self._gap(2)
        elif tag in _BLOCK_GAP:
            self._gap(_BLOCK_GAP[tag])

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            self._put(data)
            return
        if self.keep_spacing:
            text = _COLLAPSED.sub(" ", data)
            if self._at_line_start():
                text = text.lstrip(_ASCII_SPACE)
        else:
            text = re.sub(r"\s+", " ", data)
            if self._at_line_start():
                text = text.lstrip()
        if text:
            self._mark_direction()
            self._put(text)

    def handle_comment(self, data: str) -> None:
        if data == "tidings:body":
            self._put(BODY_START_MARK)
        elif data == "/tidings:body":
            self._put(BODY_END_MARK)
        elif (
            self.placeholder is not None
            and self.placeholder.fullmatch(data)
            # Statements stay even where text is hidden, so blocks remain balanced.
            and (not self.hidden or data in self.statements)
        ):
            if data in self.statements:
                self.out.append(f"<!--{data}-->")
            else:
                self._mark_direction()
                self._put(f"<!--{data}-->")

    def text(self) -> str:
        text = "".join(self.out)
        text = re.sub(r"[ \t]+\n", "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
        return text.strip("\n ") + "\n"


def html_to_text(
    html: str,
    *,
    placeholder: re.Pattern[str] | None = None,
    statements: frozenset[str] = frozenset(),
    keep_spacing: bool = False,
) -> str:
    """Readable plain text for an HTML message (see _TextConverter).  ``placeholder`` matches
    the comments to keep (Jinja placeholders); ``statements`` are those kept even when hidden.
    ``keep_spacing`` (a person's mail, not a layout's): no-break spaces are kept as written and
    an element styled ``white-space: pre`` (Apple Mail's tabs, Outlook's code) as ``<pre>``."""
    converter = _TextConverter(placeholder, statements, keep_spacing)
    converter.feed(html)
    converter.close()
    return converter.text()


def _shown(href: str) -> str:
    """A link's address as a reader of the text part uses it: a mailto's address alone, decoded
    ("sales@example.com", not "sales@example.com?subject=Hi%20there")."""
    if href.lower().startswith("mailto:"):
        return unquote(href[len("mailto:") :].partition("?")[0])
    return href
