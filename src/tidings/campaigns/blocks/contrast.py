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

The background is the one the layout paints behind ``{{ content }}`` (``layout_background``:
the nearest enclosing element's ``background-color``, ``background`` or ``bgcolor``, its
stylesheet inlined first): white in the default layout, but a layout with a dark or tinted
content area is checked against its own colour (MJML's sections carry no background of their
own).  A layout that says nothing readable there counts as white, what mail programs show.  The
arithmetic is in ``tidings.lib.contrast``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html.parser import HTMLParser

from tidings.lib.contrast import AA_LARGE, AA_TEXT, contrast_ratio, nearest_passing, readable_on

from .compiler import DARK_BACKGROUND, MUTED, dark_colours
from .schema import (
    BLOCK_LABELS,
    BlockError,
    Button,
    Columns,
    Document,
    Footer,
    Heading,
    Social,
    Text,
)

BACKGROUND = "#ffffff"

_MARK = "tdg-content-mark"
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_HEX_COLOUR = re.compile(r"#(?:[0-9a-f]{6}|[0-9a-f]{3})\b")
_RGB = re.compile(r"rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*(?:,\s*([\d.]+%?)\s*)?\)")
_NAMED = {"white": "#ffffff", "black": "#000000"}
_CLEAR = frozenset({"transparent", "none", "initial", "inherit", "unset"})


def _declared_colour(value: str) -> str | None:
    """The colour a ``background``/``background-color`` value (or a ``bgcolor``) paints, as
    #rrggbb; None for a transparent one or one that is not a plain colour (a picture, a
    gradient): the element's parent decides then."""
    value = value.strip().lower()
    if not value or value in _CLEAR or "gradient(" in value or "url(" in value:
        return None
    found = _HEX_COLOUR.search(value)
    if found:
        digits = found.group()[1:]
        return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)
    rgb = _RGB.search(value)
    if rgb:
        alpha = rgb.group(4)
        if alpha is not None and float(alpha.rstrip("%")) == 0:
            return None
        r, g, b = (min(int(rgb.group(i)), 255) for i in (1, 2, 3))
        return f"#{r:02x}{g:02x}{b:02x}"
    for word in re.split(r"[\s,]+", value):
        if word in _NAMED:
            return _NAMED[word]
    return None


def _background_of(attrs: list[tuple[str, str | None]]) -> str | None:
    style = ""
    bgcolor = ""
    for name, value in attrs:
        if name == "style":
            style = value or ""
        elif name == "bgcolor":
            bgcolor = value or ""
    colour = None
    # The last declaration wins, as in a browser; a style attribute wins over bgcolor.
    for declaration in style.split(";"):
        prop, _, value = declaration.partition(":")
        if prop.strip().lower() in ("background", "background-color"):
            colour = _declared_colour(value)
    return colour or _declared_colour(bgcolor)


class _Enclosing(HTMLParser):
    """The background of each element open where the content mark is, innermost last."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.found: list[str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found is not None:
            return
        if tag == "span" and ("id", _MARK) in attrs:
            self.found = [colour for _, colour in self.stack]
            return
        if tag not in _VOID:
            self.stack.append((tag, _background_of(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if self.found is not None:
            return
        # Close up to the nearest open element of that name (HTML's implied end tags).
        for depth in range(len(self.stack) - 1, -1, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                return


@lru_cache(maxsize=32)
def layout_background(layout_html: str | None) -> str:
    """The colour behind the body in a layout (None: the default layout), as #rrggbb; white
    when the layout does not say, or its CSS cannot be read."""
    import css_inline

    from tidings.campaigns.rendering.markup import inline_css
    from tidings.campaigns.rendering.placeholders import CONTENT
    from tidings.campaigns.rendering.sources import default_layout_html

    source = layout_html if layout_html and layout_html.strip() else default_layout_html()
    found = CONTENT.search(source)
    if found is None:
        return BACKGROUND
    marked = source[: found.start()] + f'<span id="{_MARK}"></span>' + source[found.end() :]
    try:
        inlined = inline_css(marked)
    except css_inline.InlineError:
        return BACKGROUND
    parser = _Enclosing()
    parser.feed(inlined)
    parser.close()
    for colour in reversed(parser.found or []):
        if colour is not None:
            return colour
    return BACKGROUND


def _shortfall(what: str, colour: str, against: str, needed: float, against_name: str) -> str:
    ratio = contrast_ratio(colour, against)
    return (
        f"{what} ({colour}) on {against_name} ({against}) has a contrast of {ratio:.2f}:1; "
        f"WCAG AA needs at least {needed:g}:1. {nearest_passing(colour, against, needed)} "
        "would pass."
    )


def contrast_errors(document: Document, background: str = BACKGROUND) -> list[BlockError]:
    """What in ``document`` is too faint to read on ``background`` (the layout's, from
    ``layout_background``); [] when every pair reaches WCAG AA."""
    s = document.settings
    name = "the background" if background == BACKGROUND else "the layout's background"
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
                _shortfall(what, s.text_colour, background, needed, name),
            )
        )
    if contrast_ratio(s.link_colour, background) < AA_TEXT:
        found.append(
            BlockError(
                None,
                "link_colour",
                _shortfall("Links", s.link_colour, background, AA_TEXT, name),
            )
        )
    # Dark mode: the blocks paint DARK_BACKGROUND behind themselves, whatever the layout, and
    # take lighter shades of the colours chosen (compiler.dark_colours), made to pass; checked
    # all the same, so a change there cannot slip through.
    dark = dark_colours(document)
    at_night = "the dark-mode background"
    if contrast_ratio(dark["text"], DARK_BACKGROUND) < needed:
        found.append(
            BlockError(
                None,
                "text_colour",
                _shortfall(f"{what} in dark mode", dark["text"], DARK_BACKGROUND, needed, at_night),
            )
        )
    if contrast_ratio(dark["link"], DARK_BACKGROUND) < AA_TEXT:
        found.append(
            BlockError(
                None,
                "link_colour",
                _shortfall("Links in dark mode", dark["link"], DARK_BACKGROUND, AA_TEXT, at_night),
            )
        )
    for index, block in enumerate(document.blocks):
        if isinstance(block, Footer) and contrast_ratio(dark["footer"], DARK_BACKGROUND) < AA_TEXT:
            found.append(
                BlockError(
                    index,
                    "text",
                    _shortfall(
                        "Footer text in dark mode",
                        dark["footer"],
                        DARK_BACKGROUND,
                        AA_TEXT,
                        at_night,
                    ),
                )
            )
        # The footer block's small print is a fixed grey, made for light backgrounds.
        if isinstance(block, Footer) and contrast_ratio(MUTED, background) < AA_TEXT:
            found.append(
                BlockError(
                    index,
                    "text",
                    _shortfall("Footer text", MUTED, background, AA_TEXT, name)
                    + " The footer's grey is made for light backgrounds: use a Text block for "
                    "small print on this layout.",
                )
            )
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
