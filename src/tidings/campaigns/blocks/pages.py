"""What the template and campaign pages share about bodies of blocks: reading the editor from a
request, switching a body between formats, the preview (desktop, phone, dark), and the editor's
part of the page context."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from tidings.audience.tokens import absolute_url

from .compiler import BlocksInvalid, blocks_to_html, dumps
from .contrast import contrast_errors, layout_background
from .editor import BlockEditor, describe_all, locate
from .schema import BLOCK_LABELS, FONTS, NETWORKS, BlockError, Document

# How mail programs that force dark mode show an email: colours inverted, pictures not.  The
# preview can only imitate it (each program does it its own way); Apple Mail honours the
# email's own prefers-color-scheme rules instead, and an email that has them (blocks in the
# default layout do) is shown with them applied.
_DARK = (
    "<style>html{background:#0b0a08}body{filter:invert(1) hue-rotate(180deg)}"
    "img{filter:invert(1) hue-rotate(180deg)}</style>"
)
_DARK_QUERY = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)


def preview_links():
    """Links in a preview lead to harmless pages: the page where someone asks for their
    preference link, never a real unsubscribe.  No "view in your browser": a template has no
    web version until a campaign made from it is sent and shown in the archive."""
    from tidings.campaigns.rendering import MessageLinks

    harmless = absolute_url(reverse("public:preferences-link"))
    return MessageLinks(unsubscribe_url=harmless, preferences_url=harmless, view_url="")


@dataclass
class Preview:
    html: str = ""
    dark_html: str = ""
    text: str = ""
    subject: str = ""
    problems: list[str] = field(default_factory=list)
    errors: list[BlockError] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "html": self.html,
            "dark_html": self.dark_html,
            "text": self.text,
            "subject": self.subject,
            "problems": self.problems,
            "errors": [
                {"block": e.index, "field": e.field, "message": e.message} for e in self.errors
            ],
        }


def dark(document_html: str) -> str:
    """The email as a mail program in dark mode shows it: its own dark-mode rules applied
    whatever the preview frame's colour scheme, or (without any) its colours inverted."""
    if _DARK_QUERY.search(document_html):
        return _DARK_QUERY.sub("@media all", document_html)
    # After the charset declaration when there is one: it must come first in the head.
    charset = re.search(r"<meta\b[^>]*charset[^>]*>", document_html, re.I)
    if charset is not None:
        return document_html[: charset.end()] + _DARK + document_html[charset.end() :]
    return re.sub(r"(<head\b[^>]*>)", lambda m: m.group(1) + _DARK, document_html, count=1)


def preview(editor: BlockEditor, *, subject: str, layout: Any = None) -> Preview:
    """The email as the made-up sample person gets it (or why it cannot be made)."""
    from tidings.campaigns.rendering import SAMPLE_CONTACT, CompiledMessage, TemplateProblem

    document, errors = editor.validate()
    if document is None:
        return Preview(problems=describe_all(errors, editor), errors=errors)
    if not document.blocks:
        return Preview(problems=["Add a block to start."])
    try:
        compiled = CompiledMessage.from_sources(
            subject=subject or "(no subject yet)",
            body=blocks_to_html(dumps(document)),
            fmt="html",
            layout_html=layout.html if layout is not None else None,
            layout_text=layout.text if layout is not None else "",
        )
        rendered = compiled.render(SAMPLE_CONTACT, preview_links())
    except (TemplateProblem, BlocksInvalid) as problem:
        located = locate(document, str(problem)) if isinstance(problem, TemplateProblem) else []
        if located:
            return Preview(problems=describe_all(located, editor), errors=located)
        where = getattr(problem, "part", "body")
        prefix = {"subject": "Subject", "layout": "Layout"}.get(where, "Blocks")
        return Preview(problems=[f"{prefix}: {getattr(problem, 'message', str(problem))}"])
    # Colours too faint to read: shown at their fields while the preview still shows the email
    # (saving is refused until they are fixed, check_template).
    faint = contrast_errors(document, _background(layout))
    return Preview(
        html=rendered.html,
        dark_html=dark(rendered.html),
        text=rendered.text,
        subject=rendered.subject,
        problems=describe_all(faint, editor),
        errors=faint,
    )


def _background(layout: Any) -> str:
    """The colour the layout (None: the default one) paints behind the blocks."""
    return layout_background(layout.html if layout is not None else None)


def block_problems(
    editor: BlockEditor, problems: list[Any], layout: Any = None
) -> list[BlockError]:
    """The saved form's template problems, traced to blocks and fields where possible."""
    document, errors = editor.validate()
    if errors:
        return errors
    if document is None or not problems:
        return []
    return contrast_errors(document, _background(layout)) + locate(document, "")


# --- switching formats -----------------------------------------------------------------------
def to_markdown(editor: BlockEditor) -> str:
    """Blocks as Markdown, as faithfully as Markdown allows (columns one after the other)."""
    parts = []
    for block in editor.data()["blocks"]:
        kind = block["type"]
        if kind == "heading":
            parts.append("#" * int(block.get("level") or 1) + " " + str(block.get("text", "")))
        elif kind in ("text", "footer"):
            parts.append(str(block.get("text", "")))
        elif kind == "image" and block.get("src"):
            src = str(block["src"])
            if src.startswith(("/media/", "/static/")):
                src = absolute_url(src)
            parts.append(f"![{block.get('alt', '')}]({src})")
        elif kind == "button":
            parts.append(f"[{block.get('label', '')}]({block.get('url', '')})")
        elif kind == "columns":
            parts.extend(str(block.get(f"{s}_text", "")) for s in ("left", "right"))
        elif kind == "divider":
            parts.append("---")
        elif kind == "social":
            parts.append(
                " · ".join(
                    f"[{NETWORKS[link['network']]}]({link['url']})" for link in block["links"]
                )
            )
    return "\n\n".join(p for p in parts if p.strip()) + "\n"


def from_markdown(source: str) -> BlockEditor:
    """Markdown as blocks: "#" lines become headings, the rest text blocks (one per run of
    paragraphs), so nothing written is lost."""
    blocks: list[dict[str, Any]] = []
    text: list[str] = []

    def flush() -> None:
        if "\n".join(text).strip():
            blocks.append({"type": "text", "text": "\n".join(text).strip("\n")})
        text.clear()

    for line in source.replace("\r\n", "\n").split("\n"):
        heading = re.fullmatch(r"(#{1,3})\s+(.+?)\s*#*\s*", line)
        if heading:
            flush()
            blocks.append(
                {"type": "heading", "level": len(heading.group(1)), "text": heading.group(2)}
            )
        else:
            text.append(line)
    flush()
    return BlockEditor(blocks, {})


def from_html(source: str) -> BlockEditor:
    """HTML as one text block of its words: blocks take no raw HTML."""
    from tidings.campaigns.rendering import html_to_text

    words = html_to_text(source).strip()
    return BlockEditor([{"type": "text", "text": words}] if words else [], {})


def convert(
    body: str, editor: BlockEditor | None, source: str, target: str
) -> tuple[str, BlockEditor | None]:
    """(body, editor) after switching a body from format ``source`` to ``target``."""
    from tidings.campaigns.rendering import markdown_to_html

    if source == target:
        return body, editor
    if source == "blocks":
        editor = editor or BlockEditor.from_body(body)
        if target == "markdown":
            return to_markdown(editor), None
        try:
            return blocks_to_html(editor.body()), None
        except BlocksInvalid:
            return to_markdown(editor), None
    if target == "blocks":
        editor = from_markdown(body) if source == "markdown" else from_html(body)
        return editor.body(), editor
    if source == "markdown" and target == "html":
        return markdown_to_html(body), None
    return body, None  # HTML to Markdown: HTML inside Markdown still works


def bind(data: Any, *, stored_format: str, stored_body: str) -> tuple[str, BlockEditor | None]:
    """For a POST (``data``, a mutable QueryDict): its format and block editor, with
    ``data["body"]`` made from the blocks (and converted when the format was switched).
    Without data (a GET): the stored body's format and editor."""
    if data is None:
        if stored_format != "blocks":
            return stored_format, None
        return stored_format, BlockEditor.from_body(stored_body)
    fmt = data.get("format", "")
    previous = data.get("previous_format", fmt)
    editor = BlockEditor.from_post(data) if previous == "blocks" else None
    if editor is not None:
        data["body"] = editor.body()
    if data.get("op") == "format" and fmt in ("blocks", "markdown", "html"):
        data["body"], editor = convert(data.get("body", ""), editor, previous, fmt)
    return fmt, editor


def page_context(
    editor: BlockEditor | None, *, subject: str, layout: Any, saving_failed: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """({"editor": …} for the page, messages for the form's problem list): the blocks with their
    errors, and the preview.  After a refused save, template problems are traced to blocks."""
    if editor is None:
        return {"editor": None}, []
    result = preview(editor, subject=subject, layout=layout)
    errors = result.errors
    messages: list[str] = []
    if saving_failed:
        traced = block_problems(editor, ["failed"], layout)
        if traced:
            errors = traced
            messages = describe_all(traced, editor)
    return {"editor": editor_context(editor, errors, result)}, messages


def editor_context(
    editor: BlockEditor, errors: list[BlockError], preview_result: Preview | None
) -> dict[str, Any]:
    from tidings.campaigns.rendering import VARIABLES
    from tidings.media.queries import picker_choices

    blocks, settings = editor.views(errors)
    return {
        "blocks": blocks,
        "settings_fields": settings,
        "block_templates": BlockEditor.templates(),
        "block_kinds": list(BLOCK_LABELS.items()),
        "picker": picker_choices(),
        "fonts": FONTS,
        "preview": preview_result,
        "moved_to": editor.moved_to,
        "placeholders": [
            {"value": "{{ " + name + " }}", "label": help_text}
            for name, help_text in VARIABLES.items()
            if not name.endswith(".KEY")
        ],
    }


def escape(value: str) -> str:
    return html.escape(value)


__all__ = [
    "Document",
    "Preview",
    "block_problems",
    "convert",
    "editor_context",
    "preview",
    "preview_links",
]
