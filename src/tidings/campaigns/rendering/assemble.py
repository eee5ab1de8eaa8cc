"""Assembling a message's HTML and text templates (Jinja sources) from its body and layout."""

from __future__ import annotations

import re
from dataclasses import dataclass

import css_inline

from .contract import (
    TemplateProblem,
)
from .diagnostics import (
    JINJA_IN_TAG,
    NO_CONTENT,
    NO_TEXT_CONTENT,
    lost_problem,
)
from .markup import (
    DARK_RULES,
    TITLE,
    body_of_document,
    email_document,
    fix_tbody,
    inline_css,
    markdown_to_html,
    preheader_html,
)
from .placeholders import (
    BODY_END,
    BODY_MARKERS,
    BODY_START,
    CONTENT,
    JinjaInTag,
    Placeholders,
    escape_braces,
)
from .sources import Sources
from .text import BODY_END_MARK, BODY_START_MARK, html_to_text


@dataclass(frozen=True)
class Built:
    html: str
    text: str


def assemble(sources: Sources) -> Built:
    """The HTML and text templates (Jinja sources) for a message; raises TemplateProblem."""
    if sources.fmt == "markdown":
        body_html = markdown_to_html(sources.body)
    else:
        body_html = body_of_document(sources.body)
    found = CONTENT.search(sources.layout_html)
    if found is None:
        raise TemplateProblem(NO_CONTENT, part="layout")
    merged = (
        sources.layout_html[: found.start()]
        + BODY_START
        + BODY_MARKERS.sub("", body_html)
        + BODY_END
        + sources.layout_html[found.end() :]
    )
    marks = Placeholders(merged, sources.preheader)
    try:
        protected = marks.html(merged)
    except JinjaInTag as exc:  # checked per part before; this is the merged whole
        raise TemplateProblem(JINJA_IN_TAG.format(tag=exc.tag), part="body") from None
    title = "" if TITLE.search(protected) else f"<!--{marks.token('{{ campaign.subject }}')}-->"
    document = email_document(
        protected,
        preheader_html(marks, sources.preheader),
        title,
        dark=DARK_RULES.search(sources.layout_html) is not None,
    )
    try:
        inlined = inline_css(document)
    except css_inline.InlineError as exc:
        raise TemplateProblem(f"the layout's CSS cannot be read: {exc}", part="layout") from None
    inlined = fix_tbody(inlined, protected, marks.prefix)

    html_source, used = marks.restore(escape_braces(BODY_MARKERS.sub("", inlined)))
    lost = [tag for index, tag in enumerate(marks.tags) if index not in used]
    if lost:
        raise lost_problem(lost[0], sources)

    statements = frozenset(
        f"{marks.prefix}{index}x" for index, tag in enumerate(marks.tags) if tag[1] != "{"
    )
    placeholder = re.compile(rf"{marks.prefix}\d+x")
    derived = html_to_text(inlined, placeholder=placeholder, statements=statements)
    # The text template is compiled with trim_blocks (right for hand-written text), which would
    # eat the line break the converter put after a statement: put one more there.
    trimmed = {
        f"<!--{marks.prefix}{index}x-->"
        for index, tag in enumerate(marks.tags)
        if tag[1] in "%#" and tag[-3] not in "-+"
    }
    derived = re.sub(
        rf"<!--{marks.prefix}\d+x-->\n",
        lambda m: m.group() + "\n" if m.group()[:-1] in trimmed else m.group(),
        escape_braces(derived),
    )
    before, _, rest = derived.partition(BODY_START_MARK)
    body_text, _, after = rest.partition(BODY_END_MARK)
    if sources.layout_text.strip():
        frame = sources.layout_text
    else:
        before = before.rstrip() + "\n\n" if before.strip() else ""
        after = "\n\n" + after.lstrip() if after.strip() else "\n"
        frame = marks.restore(before + "{{ content }}" + after)[0]
    if sources.text_body.strip():
        body_text = sources.text_body.strip("\n")
    else:
        body_text = marks.restore(body_text.strip())[0]
    found = CONTENT.search(frame)
    if found is None:
        raise TemplateProblem(NO_TEXT_CONTENT, part="layout")
    text_source = frame[: found.start()] + body_text + frame[found.end() :]
    return Built(html=html_source, text=text_source)
