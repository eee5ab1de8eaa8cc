"""Invisible format characters out of single-line text that people type and operators read.

Unicode's format characters (category Cf) draw nothing but change how the text around them is
shown: the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the
direction marks (U+200E, U+200F, U+061C), the zero-width space's relatives, the invisible
"tag" characters.  In a name or a subject they let the text an operator sees differ from what
is stored ("Trojan Source": ``"\u202eevil"`` shows as ``"live"``), and they make two names that
look the same different.  Single-line fields (names, companies, subjects) never need them: a
name written in Arabic or Hebrew is shown right to left by the reader's own bidirectional
algorithm, from its letters alone, so taking the marks out leaves it intact and readable.

Two format characters are kept, because they are part of how words are spelt: the zero-width
non-joiner (U+200C, in Persian, Kurdish, and Indic scripts: "می‌خواهم") and the zero-width
joiner (U+200D, in Indic conjuncts and emoji sequences).  Neither changes the direction or
order of anything.

Multi-line free text (an enquiry's message, notes, email bodies) is kept as written: there the
marks are how mixed right-to-left and left-to-right prose is written correctly, and it is shown
as a block, not as a label an operator acts on.

The standard library's ``unicodedata`` is the character database; no library does this one
filter, so it is written here.
"""

from __future__ import annotations

import re
import unicodedata

#: Format characters that are part of spelling, not of display: kept.
KEPT = frozenset({"\u200c", "\u200d"})


def strip_format_characters(text: str) -> str:
    """``text`` without its Unicode format characters (category Cf), but for ZWNJ and ZWJ."""
    if text.isascii():  # nearly every value: no call per character
        return text
    return "".join(c for c in text if c in KEPT or unicodedata.category(c) != "Cf")


def clean_line(value: object) -> object:
    """``strip_format_characters`` of a string, surrounding whitespace dropped if any was
    uncovered; anything that is not a string unchanged."""
    if not isinstance(value, str) or value.isascii():
        return value
    cleaned = strip_format_characters(value)
    return cleaned.strip() if cleaned != value else value


#: A line break or tab, with the spaces and breaks around it: one space in a one-line field.
_BREAKS = re.compile(
    r"[ \t\n\r\v\f\x85\u2028\u2029]*[\t\n\r\v\f\x85\u2028\u2029][ \t\n\r\v\f\x85\u2028\u2029]*"
)


def has_breaks(text: str) -> bool:
    """Whether ``text`` holds a line break or a tab (what ``one_line`` changes)."""
    return _BREAKS.search(text) is not None


def one_line(value: object) -> object:
    """A one-line field's string (a name, a company, a phone number) with each line break or
    tab, and the spaces around it, turned into one space; anything that is not a string
    unchanged.  A spreadsheet cell typed with Alt+Enter ("Acme Ltd⏎London") would otherwise be
    stored with its break, and the contact page's text box, which cannot hold one, would
    silently join the lines ("Acme LtdLondon") on the next save.  Multi-line text (a work
    address, notes) is not passed through here."""
    if not isinstance(value, str) or not has_breaks(value):
        return value
    return _BREAKS.sub(" ", value).strip()
