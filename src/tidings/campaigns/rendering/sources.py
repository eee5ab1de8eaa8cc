"""What a message is made of (``Sources``), and the default layout every campaign may use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..blocks.compiler import BlocksInvalid, blocks_to_html
from ..models import Layout
from .contract import TemplateProblem


@dataclass(frozen=True)
class Sources:
    subject: str
    body: str
    fmt: str = "markdown"
    text_body: str = ""
    layout_html: str = ""
    layout_text: str = ""
    preheader: str = ""


def sources_for(
    subject: str, body: str, fmt: str, text_body: str, layout: Any, preheader: str
) -> Sources:
    """The sources of a message; a body of blocks (the block editor's JSON) is compiled through
    MJML into HTML here, so everything after treats it as an HTML body.  Blocks that do not make
    a document raise TemplateProblem (part "body")."""
    if fmt == "blocks":
        try:
            body, fmt = blocks_to_html(body or ""), "html"
        except BlocksInvalid as exc:
            raise TemplateProblem(str(exc), part="body") from None
    if layout is None:
        layout_html, layout_text = default_layout_html(), ""
    else:
        layout_html, layout_text = layout.html, layout.text
    return Sources(
        subject=subject or "",
        body=body or "",
        fmt=fmt,
        text_body=text_body or "",
        layout_html=layout_html or "",
        layout_text=layout_text or "",
        preheader=preheader or "",
    )


DEFAULT_LAYOUT_NAME = "Default"

# The shipped layout is a template file beside this module, read once.
_DEFAULT_LAYOUT_FILE = Path(__file__).with_name("default_layout.html")


def default_layout_html() -> str:
    """A plain, responsive, accessible email layout: table-based (what Outlook needs), styles in
    one <style> element (inlined at compile time; the media query stays for phones), a "view in
    your browser" link when there is a view_url, and the footer every marketing email needs: why
    they get it, unsubscribe, preferences, and the controller's name and postal address."""
    return _default_layout()


@cache
def _default_layout() -> str:
    return _DEFAULT_LAYOUT_FILE.read_text(encoding="utf-8")


def ensure_default_layout() -> Any:
    """The layout named "Default", created from default_layout_html() if there is none."""
    layout, _ = Layout.objects.get_or_create(
        name=DEFAULT_LAYOUT_NAME, defaults={"html": default_layout_html()}
    )
    return layout
