"""The rich text of blocks: a small Markdown (bold, italic, links, lists, quotes, hard line
breaks) with no raw HTML, and placeholders (``{{ contact.first_name }}``) kept intact.

Raw HTML is off: "<b>" typed into a text block shows as "<b>", so nobody needs (or can use)
HTML in the block editor.  Placeholders are swapped for inert tokens of letters and digits
before Markdown or MJML sees the text, and swapped back afterwards: both would otherwise escape
the quotes of ``default("friend")`` or percent-encode a placeholder used as a link.
"""

from __future__ import annotations

import html
import re
import secrets
import unicodedata

from markdown_it import MarkdownIt

# A placeholder or a tag: what the campaign sandbox will read.  Non-greedy up to the first
# closer, which is how Jinja's lexer reads them too (a "}}" inside a quoted string is rare
# enough in a text block not to matter; the sandbox's own checks see the result).
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)

# Markdown for people who do not write HTML: CommonMark without raw HTML, images, code,
# headings or tables (blocks do those), and a line break is a line break ("Thanks,⏎The team").
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "breaks": True}).disable(
    ["image", "heading", "lheading", "code", "fence", "html_block", "html_inline", "hr"]
)


class Tokens:
    """Placeholders swapped for tokens ``<prefix><n>x`` (letters and digits only) and back."""

    def __init__(self) -> None:
        self.prefix = "tdg" + secrets.token_hex(4) + "p"
        self.tags: list[str] = []
        self._pattern = re.compile(rf"{self.prefix}(\d+)x")

    def protect(self, text: str) -> str:
        def swap(m: re.Match[str]) -> str:
            self.tags.append(m.group())
            return f"{self.prefix}{len(self.tags) - 1}x"

        return JINJA.sub(swap, text)

    def restore(self, text: str) -> str:
        return self._pattern.sub(lambda m: self.tags[int(m.group(1))], text)


def plain(text: str, tokens: Tokens) -> str:
    """One line of plain text (a heading, a label) as HTML, placeholders protected."""
    return html.escape(tokens.protect(text), quote=False)


def attribute(value: str, tokens: Tokens) -> str:
    """A value for an MJML attribute, placeholders protected."""
    return html.escape(tokens.protect(value), quote=True)


def rich(text: str, tokens: Tokens) -> str:
    """Rich text (Markdown subset) as an HTML fragment, placeholders protected."""
    return _MARKDOWN.render(tokens.protect(text)).strip()


# "](address)" left in the text: a link Markdown did not read (an address with a space, or one
# it refuses, such as javascript:), which would reach the email as its raw brackets.  The
# address runs to the ")" that closes its "(", as Markdown reads one: "javascript:alert(1)" is
# quoted whole in the error, not cut at its first ")".
_UNREAD_LINK = re.compile(r"\[[^\]\n]*\]\(")


def _unread_links(text: str) -> list[str]:
    found: list[str] = []
    end = 0
    for m in _UNREAD_LINK.finditer(text):
        if m.start() < end:
            continue  # inside the address before it: "[a](x [b](y))" is one link
        depth, end = 0, m.end()
        while end < len(text) and text[end] != "\n":
            if text[end] == "(":
                depth += 1
            elif text[end] == ")":
                if depth == 0:
                    break
                depth -= 1
            end += 1
        found.append(text[m.end() : end])
    return found


def link_addresses(text: str) -> list[str]:
    """The addresses of the links written in rich text, placeholders restored: those Markdown
    reads as links (as it will write them: percent-encoded) and those it leaves as text."""
    tokens = Tokens()
    found: list[str] = []
    for block in _MARKDOWN.parse(tokens.protect(text)):
        for child in block.children or ():
            if child.type == "link_open":
                found.append(tokens.restore(str(child.attrGet("href") or "")))
            elif child.type == "text":
                found += [tokens.restore(a) for a in _unread_links(child.content)]
    return found


# What is not words: placeholders, link addresses ("](https://…)") and bare addresses.  A Latin
# address in an Arabic sentence does not make the sentence left-to-right.
_NOT_WORDS = re.compile(
    r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}|\]\([^)\n]*\)|(?:https?://|mailto:|tel:)\S+", re.S
)


def direction(text: str) -> str:
    """The writing direction of a block's words: "rtl" when every letter with a direction is
    of a right-to-left script (Hebrew, Arabic, Syriac, Thaana, N'Ko…), "auto" when both kinds
    are there (the reader's program takes the first letter's), "" when none is right-to-left
    (nothing to mark: left-to-right is every email's default).  Unicode's own bidirectional
    classes decide: "R" and "AL" are right-to-left letters, "L" left-to-right ones."""
    rtl = ltr = False
    for char in _NOT_WORDS.sub(" ", text):
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            rtl = True
        elif kind == "L":
            ltr = True
        if rtl and ltr:
            return "auto"
    return "rtl" if rtl else ""
