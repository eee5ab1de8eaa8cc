"""Blocks → MJML → responsive, Outlook-safe HTML (MRML, through the ``mjml-python`` binding).

``blocks_to_html(body)`` is what the rendering pipeline calls for a body in the "blocks"
format: it returns an HTML fragment (the MJML output's CSS in a ``<style>`` element, then its
body) which the pipeline then treats exactly like a pasted HTML body: sanitised, put in its
layout, CSS inlined, plain text derived, compiled in the sandbox, tracked.  MJML's output
keeps working after that: its column widths for wide screens are in a media query (kept in a
<style> element by the inliner), and its Outlook tables are in conditional comments (kept by
the sanitiser).

Placeholders pass through MJML as inert tokens (``markup.Tokens``) and come back unchanged, so
the sandbox checks and renders them as in any other body.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache

from django.conf import settings
from pydantic import ValidationError

from tidings.lib.contrast import AA_TEXT, contrast_ratio, nearest_passing, readable_on

from .markup import Tokens, attribute, direction, plain, rich
from .schema import (
    BLOCK_LABELS,
    EXAMPLE_PICTURE,
    FIELDS,
    FONTS,
    NETWORKS,
    OLD_EXAMPLE_PICTURE,
    SETTINGS_FIELDS,
    BlockError,
    Button,
    Columns,
    Divider,
    Document,
    Footer,
    Heading,
    Image,
    Social,
    Spacer,
    Text,
    errors_of,
)

MUTED = "#4f5863"  # 7:1 on white

# Dark mode (mail programs that apply the email's own prefers-color-scheme rules: Apple Mail,
# iOS Mail, Outlook's apps): the blocks paint this behind themselves, whatever the layout does,
# and their text, links and small print take a light shade of the chosen colour (``dark_shade``).
DARK_BACKGROUND = "#15181c"
DARK_TEXT_RATIO = 7.0  # body text aims higher than AA's 4.5:1: light on dark tires the eyes


def dark_shade(colour: str, ratio: float = DARK_TEXT_RATIO) -> str:
    """``colour`` in dark mode: itself when it reads on DARK_BACKGROUND at ``ratio``, else the
    nearest lighter shade that does (a dark blue link becomes a light blue one)."""
    if contrast_ratio(colour, DARK_BACKGROUND) >= ratio:
        return colour
    return nearest_passing(colour, DARK_BACKGROUND, ratio)


MUTED_DARK = dark_shade(MUTED, AA_TEXT + 1)


def dark_colours(document: Document) -> dict[str, str]:
    """The colours the dark-mode rules give the text, the links and the footer's small print
    (``contrast.contrast_errors`` checks these very colours on DARK_BACKGROUND)."""
    s = document.settings
    return {
        "text": dark_shade(s.text_colour),
        "link": dark_shade(s.link_colour, AA_TEXT + 1),
        "footer": MUTED_DARK,
    }


_HEADING_SIZES = {1: (28, 34), 2: (22, 28), 3: (18, 24)}


class BlocksInvalid(ValueError):
    """The body is not a valid block document; ``errors`` say where and why."""

    def __init__(self, errors: list[BlockError]) -> None:
        self.errors = errors
        super().__init__("; ".join(describe(e) for e in errors) or "the blocks are not valid")


def field_label(kind: str | None, name: str) -> str:
    """A field as the editor labels it, for a message ("image", not "src"; "small print" for a
    footer's text); ``kind`` None for the email's settings."""
    specs = SETTINGS_FIELDS if kind is None else FIELDS.get(kind, ())
    for spec in specs:
        if spec.name == name:
            label = spec.label.removesuffix(" (optional)")
            return label[:1].lower() + label[1:]
    return name.replace("_", " ")


def describe(error: BlockError, blocks: list | None = None) -> str:
    """ "Block 2 (Button), link: a link must start with https://…" """
    where = error.where
    kind = None
    if error.index is not None and blocks is not None and error.index < len(blocks):
        kind = blocks[error.index].get("type") if isinstance(blocks[error.index], dict) else None
        if kind in BLOCK_LABELS:
            where += f" ({BLOCK_LABELS[kind]})"
    field = ""
    if error.field:
        known = error.index is None or kind in FIELDS
        name = field_label(kind, error.field) if known else error.field.replace("_", " ")
        field = f", {name}"
    return f"{where}{field}: {error.message}"


def parse(body: str) -> Document:
    """The document in ``body`` (JSON); raises BlocksInvalid."""
    if not body.strip():
        return Document()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BlocksInvalid([BlockError(None, "", f"not a block document ({exc.msg})")]) from None
    try:
        return Document.model_validate(data)
    except ValidationError as exc:
        errors = errors_of(exc, data)
        blocks = data.get("blocks") if isinstance(data, dict) else None
        messages = [describe(e, blocks if isinstance(blocks, list) else None) for e in errors]
        invalid = BlocksInvalid(errors)
        invalid.args = ("; ".join(messages),)
        raise invalid from None


def dumps(document: Document) -> str:
    """The stored form: compact JSON, defaults included (so old documents read the same after a
    default changes)."""
    return json.dumps(document.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))


# --- MJML -----------------------------------------------------------------------------------
def _image_url(src: str) -> str:
    """Pictures of the media library (and the starters' example picture) are stored by path;
    emails need the whole address."""
    if src == OLD_EXAMPLE_PICTURE:
        src = EXAMPLE_PICTURE
    if src.startswith("/media/") or src == EXAMPLE_PICTURE:
        return settings.TIDINGS_BASE_URL.rstrip("/") + src
    return src


def _style(document: Document) -> str:
    s = document.settings
    dark = dark_colours(document)
    # The layout's own rules for tables, cells and paragraphs (written for Markdown bodies)
    # must not reach MJML's layout tables: same specificity, later in the document, so these win.
    return f"""
.tdg-blocks table, .tdg-blocks th, .tdg-blocks td {{ border: 0 none; margin: 0; }}
.tdg-blocks td {{ padding: 0; }}
.tdg-blocks table {{ width: auto; }}
.tdg-blocks table[width="100%"] {{ width: 100%; }}
.tdg-blocks td[align="center"] {{ text-align: center; }}
.tdg-blocks td[align="right"] {{ text-align: right; }}
.tdg-blocks td[align="center"] > table {{ margin-left: auto; margin-right: auto; }}
.tdg-blocks td[align="right"] > table {{ margin-left: auto; margin-right: 0; }}
.tdg-text p {{ margin: 0 0 16px; }}
.tdg-text ul, .tdg-text ol {{ margin: 0 0 16px; padding-left: 24px; }}
.tdg-text li {{ margin: 0 0 4px; }}
.tdg-text blockquote {{ margin: 0 0 16px; padding-left: 16px; border-left: 4px solid #d4d8de; }}
.tdg-text a, .tdg-social a {{ color: {s.link_colour}; text-decoration: underline; }}
.tdg-footer p {{ margin: 0 0 8px; }}
.tdg-footer a {{ color: {MUTED}; text-decoration: underline; }}
@media only screen and (max-width: 479px) {{
  .tdg-col > table > tbody > tr > td {{ padding: 0 !important; }}
}}
.tdg-heading h1, .tdg-heading h2, .tdg-heading h3 {{ margin: 0; font-weight: 700; }}
@media (prefers-color-scheme: dark) {{
  .tdg-blocks {{ background-color: {DARK_BACKGROUND} !important; }}
  .tdg-text > div, .tdg-heading > div, .tdg-social > div {{ color: {dark["text"]} !important; }}
  .tdg-text a, .tdg-social a {{ color: {dark["link"]} !important; }}
  .tdg-footer > div, .tdg-footer a {{ color: {dark["footer"]} !important; }}
}}
"""


def _dir(text: str, align: str = "left") -> tuple[str, str]:
    """(the dir="…" attribute, the alignment) for a block's words.  Right-to-left words get
    dir="rtl" (dir="auto" when mixed with left-to-right ones), and "left", the default
    alignment, then means the start of the line: right for Arabic or Hebrew."""
    found = direction(text)
    if not found:
        return "", align
    if align == "left":
        align = "right" if found == "rtl" else "left"
    return f' dir="{found}"', align


def _wrap(inner: str, attr: str, start: bool) -> str:
    """Words in a right-to-left (or mixed) direction: a <div> carrying it; for dir="auto",
    aligned at the start of the line (whichever side the words' direction puts it)."""
    if not attr:
        return inner
    style = ' style="text-align:start"' if start else ""
    return f"<div{attr}{style}>{inner}</div>"


def _heading(block: Heading, tokens: Tokens) -> str:
    size, line = _HEADING_SIZES[block.level]
    tag = f"h{block.level}"
    attr, align = _dir(block.text, block.align)
    start = attr == ' dir="auto"' and block.align == "left"
    style = "text-align:start;" if start else ""
    return (
        f'<mj-text css-class="tdg-heading" align="{align}" padding="8px 0 12px">'
        f'<{tag}{attr} style="font-size:{size}px;line-height:{line}px;margin:0;{style}">'
        f"{plain(block.text, tokens)}</{tag}></mj-text>"
    )


def _rich_text(text: str, tokens: Tokens, align: str = "left", css: str = "tdg-text") -> str:
    attr, shown = _dir(text, align)
    inner = _wrap(rich(text, tokens), attr, attr == ' dir="auto"' and align == "left")
    return f'<mj-text css-class="{css}" align="{shown}">{inner}</mj-text>'


def _image(
    src: str,
    alt: str,
    tokens: Tokens,
    *,
    link: str = "",
    width: int | None = None,
    align: str = "center",
    fluid: bool = False,
) -> str:
    attrs = [f'src="{attribute(_image_url(src), tokens)}"', f'alt="{attribute(alt, tokens)}"']
    if fluid:
        # As wide as the stacked column on a phone (MJML's mj-full-width-mobile media query),
        # not its half of the desktop width, centred, beside nothing.
        attrs.append('fluid-on-mobile="true"')
    if link:
        attrs.append(f'href="{attribute(link, tokens)}"')
    if width:
        attrs.append(f'width="{width}px"')
    attrs.append(f'align="{align}"')
    return f"<mj-image {' '.join(attrs)} />"


def _button(block: Button, tokens: Tokens) -> str:
    return (
        f'<mj-button href="{attribute(block.url, tokens)}" align="{block.align}" '
        f'background-color="{block.colour}" color="{readable_on(block.colour)}">'
        f"{_label(block.label, tokens)}</mj-button>"
    )


def _label(label: str, tokens: Tokens) -> str:
    """A button's label; right-to-left words in a <span> with their direction, so a full stop
    or question mark at their end sits at their left."""
    attr, _ = _dir(label)
    words = plain(label, tokens)
    return f"<span{attr}>{words}</span>" if attr else words


def _column(block: Columns, side: str, tokens: Tokens) -> str:
    # The gutter between the two halves; on a phone, where they stack, it goes (the tdg-col
    # rule in _style), or the right half's words would sit 12 px in from everything else.
    padding = "0 12px 0 0" if side == "left" else "0 0 0 12px"
    parts = []
    src, alt, text = (getattr(block, f"{side}_{name}") for name in ("image", "alt", "text"))
    if src:
        parts.append(_image(src, alt, tokens, fluid=True))
    if text.strip():
        parts.append(_rich_text(text, tokens))
    return f'<mj-column padding="{padding}" css-class="tdg-col">{"".join(parts)}</mj-column>'


def _social(block: Social, tokens: Tokens) -> str:
    links = " &middot; ".join(
        f'<a href="{attribute(link.url, tokens)}">{html.escape(NETWORKS[link.network])}</a>'
        for link in block.links
    )
    return f'<mj-text css-class="tdg-social" align="{block.align}"><p>{links}</p></mj-text>'


def _section(inner: str) -> str:
    """A full-width block's MJML; consecutive ones share one section (``_sections``)."""
    return f"<mj-section><mj-column>{inner}</mj-column></mj-section>"


_FULL_WIDTH = re.compile(r"<mj-section><mj-column>(.*)</mj-column></mj-section>", re.S)


def _sections(parts: list[str]) -> str:
    """The blocks' sections, consecutive full-width blocks merged into one section: MJML writes
    each section as nested tables with Outlook's own copy in conditional comments (about 2 KB a
    block after CSS inlining), and Gmail cuts a message over 102 KB short, hiding the footer
    with the unsubscribe link; ten stories of four blocks were 109 KB one section a block."""
    merged: list[str] = []
    run: list[str] = []
    for part in parts:
        whole = _FULL_WIDTH.fullmatch(part)
        if whole:
            run.append(whole.group(1))
            continue
        if run:
            merged.append(_section("".join(run)))
            run = []
        merged.append(part)
    if run:
        merged.append(_section("".join(run)))
    return "".join(merged)


def to_mjml(document: Document, tokens: Tokens) -> str:
    """The document as MJML, its placeholders swapped for ``tokens``."""
    s = document.settings
    font = html.escape(FONTS[s.font][1], quote=True)
    sections = []
    for block in document.blocks:
        match block:
            case Heading():
                sections.append(_section(_heading(block, tokens)))
            case Text():
                sections.append(_section(_rich_text(block.text, tokens, block.align)))
            case Image():
                sections.append(
                    _section(
                        _image(
                            block.src,
                            block.alt,
                            tokens,
                            link=block.link,
                            width=block.width,
                            align=block.align,
                        )
                    )
                )
            case Button():
                sections.append(_section(_button(block, tokens)))
            case Columns():
                sides = [side for side in ("left", "right") if not block.side_is_empty(side)]
                if sides:
                    columns = "".join(_column(block, side, tokens) for side in ("left", "right"))
                    sections.append(f"<mj-section>{columns}</mj-section>")
            case Divider():
                sections.append(
                    _section(f'<mj-divider border-color="{block.colour}" border-width="1px" />')
                )
            case Spacer():
                sections.append(_section(f'<mj-spacer height="{block.height}px" />'))
            case Social():
                sections.append(_section(_social(block, tokens)))
            case Footer():
                attr, _ = _dir(block.text, "center")
                sections.append(
                    _section(
                        f'<mj-text css-class="tdg-footer tdg-text" align="center" font-size="13px" '
                        f'line-height="20px" color="{MUTED}" padding="16px 0 0">'
                        f"{_wrap(rich(block.text, tokens), attr, False)}</mj-text>"
                    )
                )
    return (
        '<mjml><mj-head><mj-attributes>'
        f'<mj-all font-family="{font}" />'
        f'<mj-text font-size="16px" line-height="26px" color="{s.text_colour}" padding="0" />'
        '<mj-section padding="0" />'
        '<mj-column padding="0" />'
        '<mj-image padding="0 0 16px" />'
        '<mj-button padding="8px 0 24px" font-size="16px" font-weight="600" '
        'inner-padding="12px 24px" border-radius="6px" />'
        '<mj-divider padding="16px 0" />'
        "</mj-attributes>"
        f'<mj-style>{_style(document)}</mj-style>'
        "</mj-head>"
        f'<mj-body width="{s.width}px">{_sections(sections)}</mj-body></mjml>'
    )  # fmt: skip


# --- MJML's document → a body fragment ---------------------------------------------------------
_HEAD = re.compile(r"<head\b.*?</head\s*>", re.I | re.S)
_CONDITIONAL = re.compile(r"<!--\[if\b.*?<!\[endif\]-->", re.I | re.S)
_STYLE = re.compile(r"<style\b([^>]*)>(.*?)</style\s*>", re.I | re.S)
_MEDIA = re.compile(r"""\bmedia\s*=\s*["']([^"']*)["']""", re.I)
_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.I | re.S)


def _fragment(document_html: str) -> str:
    """MJML's whole document as a body fragment: its head's CSS (a <style> with a media
    attribute becomes an @media rule) in one <style> element, then the body's content.  The
    head's Outlook-only parts (in conditional comments) are dropped: Outlook never reads a
    <style> in the body either way, and the body's conditional tables are what it needs."""
    head = _HEAD.search(document_html)
    css = []
    if head:
        for attrs, rules in _STYLE.findall(_CONDITIONAL.sub("", head.group())):
            media = _MEDIA.search(attrs)
            rules = rules.strip()
            if rules:
                css.append(f"@media {media.group(1)} {{ {rules} }}" if media else rules)
    body = _BODY.search(document_html)
    inner = body.group(1) if body else ""
    inner = inner.replace(' lang="und"', "", 1)
    css_text = "\n".join(css)
    return f'<style>\n{css_text}\n</style>\n<div class="tdg-blocks">{inner.strip()}</div>\n'


@lru_cache(maxsize=64)
def _compiled(body: str, base_url: str) -> str:
    import mjml

    document = parse(body)
    if not document.blocks:
        return ""  # the pipeline then says "the body is empty"
    tokens = Tokens()
    return tokens.restore(_fragment(mjml.mjml2html(to_mjml(document, tokens))))


def blocks_to_html(body: str) -> str:
    """The HTML body fragment for a block document (JSON).  Raises BlocksInvalid."""
    return _compiled(body, settings.TIDINGS_BASE_URL)
