"""Whether the colours a block document chooses can be read: WCAG 2.x contrast (1.4.3, AA).

Every text/background pair the compiled email uses is checked (``contrast_errors``): body
text and headings in the text colour on the content background, links in the link colour, each
button's label on its colour, and the footer's muted small print.  Normal text needs 4.5:1;
large text (headings of levels 1 and 2: 28 and 22 px bold, over WCAG's 18.66 px bold) 3:1.
A button's label is black or white, whichever reads better (``readable_on``), which reaches
4.58:1 on any colour; the check stays so a change there cannot slip through.
Each shortfall is a ``BlockError`` on the field that chose the colour (a block's, or the
email settings'), naming the pair, the ratio and the nearest shade that would pass, so the
editor shows it where the other problems of that block are, and saving is refused
(``check_template``) until it is fixed.

The content background is white: the default layout's content area, and what the compiled
blocks assume (MJML's sections carry no background of their own).  The arithmetic is in
``tidings.lib.contrast``.
"""

from __future__ import annotations

from tidings.lib.contrast import AA_LARGE, AA_TEXT, contrast_ratio, nearest_passing, readable_on

from .compiler import MUTED
from .schema import BLOCK_LABELS, BlockError, Button, Columns, Document, Heading, Social, Text

BACKGROUND = "#ffffff"


def _shortfall(what: str, colour: str, against: str, needed: float, against_name: str) -> str:
    ratio = contrast_ratio(colour, against)
    return (
        f"{what} ({colour}) on {against_name} ({against}) has a contrast of {ratio:.2f}:1; "
        f"WCAG AA needs at least {needed:g}:1. {nearest_passing(colour, against, needed)} "
        "would pass."
    )


def contrast_errors(document: Document, background: str = BACKGROUND) -> list[BlockError]:
    """What in ``document`` is too faint to read; [] when every pair reaches WCAG AA."""
    s = document.settings
    found: list[BlockError] = []
    # Headings are in the text colour too; levels 1 and 2 (bold, 22 px and up) are large text, for
    # which 3:1 is enough: an email whose only text is such headings needs no more.
    small_text = [
        b
        for b in document.blocks
        if isinstance(b, (Text, Columns, Social)) or (isinstance(b, Heading) and b.level == 3)
    ]
    large_only = not small_text and any(isinstance(b, Heading) for b in document.blocks)
    needed, what = (AA_LARGE, "Headings") if large_only else (AA_TEXT, "Body text")
    if contrast_ratio(s.text_colour, background) < needed:
        found.append(
            BlockError(
                None,
                "text_colour",
                _shortfall(what, s.text_colour, background, needed, "the background"),
            )
        )
    if contrast_ratio(s.link_colour, background) < AA_TEXT:
        found.append(
            BlockError(
                None,
                "link_colour",
                _shortfall("Links", s.link_colour, background, AA_TEXT, "the background"),
            )
        )
    if contrast_ratio(MUTED, background) < AA_TEXT:  # pragma: no cover - a fixed colour
        found.append(
            BlockError(
                None, "", _shortfall("Footer text", MUTED, background, AA_TEXT, "the background")
            )
        )
    for index, block in enumerate(document.blocks):
        if not isinstance(block, Button):
            continue
        label = readable_on(block.colour)
        ratio = contrast_ratio(label, block.colour)
        if ratio < AA_TEXT:
            found.append(
                BlockError(
                    index,
                    "colour",
                    f"{BLOCK_LABELS['button']} label ({label}) on the button ({block.colour}) "
                    f"has a contrast of {ratio:.2f}:1; WCAG AA needs at least {AA_TEXT:g}:1. "
                    f"{nearest_passing(block.colour, label, AA_TEXT)} would pass.",
                )
            )
    return found
