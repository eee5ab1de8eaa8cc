"""Checks that render: a sample contact through each part, and the links and address every layout
must carry."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from jinja2 import nodes

from . import contract
from .contract import (
    MESSAGE_NAMES,
    SAMPLE_CONTACT,
    Limits,
    Rendered,
    TemplateProblem,
    contact_values,
    controller_values,
    sample_links,
)
from .diagnostics import (
    NO_CONTENT,
    NO_TEXT_CONTENT,
    column_of,
    context_problems,
    quoted,
    runtime_message,
    static_problems,
    template_line,
)
from .placeholders import (
    CONTENT,
)
from .sandbox import (
    CampaignSandbox,
    environment,
    render_metered,
)
from .sources import Sources
from .text import html_to_text


def sample_values(*, layout: bool = False) -> dict[str, Any]:
    links = sample_links()
    values: dict[str, Any] = {
        "contact": contact_values(SAMPLE_CONTACT),
        "unsubscribe_url": links.unsubscribe_url,
        "preferences_url": links.preferences_url,
        "view_url": links.view_url,
        "campaign": {"subject": "A sample subject"},
        "controller": controller_values(),
    }
    if layout:
        values["content"] = ""
    return values


def sample_problems(
    source: str, part: str, env: CampaignSandbox, ast: nodes.Template | None = None
) -> list[TemplateProblem]:
    """Render one part's own source for the sample contact: runtime errors with their line."""
    try:
        template = env.from_string(source if ast is None else ast)
        output = render_metered(
            template, sample_values(layout=part.startswith("layout")), contract.CHECK_LIMITS
        )
    except Exception as exc:
        line = template_line(exc)
        message = runtime_message(exc)
        column = column_of(source, line, quoted(message))
        return [TemplateProblem(message, part=part, line=line, column=column)]
    if len(output) > contract.CHECK_LIMITS.output_chars:
        return [TemplateProblem(too_long(contract.CHECK_LIMITS), part=part)]
    return []


# Someone with nothing but an address: no name, company, job title or attributes.
BLANK_CONTACT = {"name": "", "email": "someone@example.com", "attributes": {}}
EMPTY_SUBJECT = (
    "the subject is empty for someone without a name (or the other values it prints): give "
    'it words of its own or a default, e.g. {{ contact.first_name | default("there") }}'
)


def _blank_person_subject(subject: str) -> str:
    """The subject as someone with nothing but an address reads it ("" on any error: the
    sample's check reports those)."""
    try:
        template = part_env("subject", "text").from_string(subject)
        values = sample_values() | {"contact": contact_values(BLANK_CONTACT)}
        return render_metered(template, values, contract.CHECK_LIMITS).strip()
    except Exception:
        return "?"


def too_long(limits: Limits) -> str:
    return f"the message would be longer than {limits.output_chars:,} characters"


def part_env(part: str, fmt: str = "html") -> CampaignSandbox:
    return environment(part in ("layout", "body") and fmt == "html")


def check_sources(sources: Sources) -> list[TemplateProblem]:
    """Every check that needs no compiled message, part by part (line numbers are the part's)."""
    problems: list[TemplateProblem] = []
    message_names = MESSAGE_NAMES
    layout_names = MESSAGE_NAMES | {"content"}
    parts = [
        ("layout", sources.layout_html, layout_names, "html"),
        ("layout_text", sources.layout_text, layout_names, "text"),
        ("subject", sources.subject, message_names - {"campaign"}, "text"),
        ("preheader", sources.preheader, message_names, "text"),
        ("body", sources.body, message_names, sources.fmt),
        ("text", sources.text_body, message_names, "text"),
    ]
    for part, source, known, fmt in parts:
        if not source.strip():
            continue
        env = part_env(part, fmt)
        parsed: list[nodes.Template] = []
        found = static_problems(source, part, env, known, parsed)
        if not found and fmt in ("html", "markdown"):
            found = context_problems(source, part)
        if not found:
            found = sample_problems(source, part, env, parsed[0] if parsed else None)
        problems.extend(found)
    if sources.subject.strip() and "\n" in sources.subject.strip():
        problems.append(TemplateProblem("a subject is one line", part="subject"))
    subject_ok = not any(p.part == "subject" for p in problems)
    if sources.subject.strip() and subject_ok and not _blank_person_subject(sources.subject):
        problems.append(TemplateProblem(EMPTY_SUBJECT, part="subject"))
    if not sources.body.strip():
        problems.append(TemplateProblem("the body is empty", part="body"))
    content_count = len(CONTENT.findall(sources.layout_html))
    if content_count != 1:
        problems.append(TemplateProblem(NO_CONTENT, part="layout"))
    if sources.layout_text.strip() and len(CONTENT.findall(sources.layout_text)) != 1:
        problems.append(TemplateProblem(NO_TEXT_CONTENT, part="layout_text"))
    return problems


class _HrefCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.update(value for name, value in attrs if name == "href" and value)


def _squash(text: str) -> str:
    return " ".join(text.split())


_MISSING_UNSUBSCRIBE = (
    'the layout has no unsubscribe link: add <a href="{{ unsubscribe_url }}">Unsubscribe</a>, '
    "so every email lets people leave with one click"
)
_MISSING_PREFERENCES = (
    'the layout has no link to the preference centre: add <a href="{{ preferences_url }}">'
    "Manage your preferences</a>"
)
_MISSING_ADDRESS = (
    "the layout does not show your postal address: add {{ controller.address }} (marketing "
    "email must say who sends it and where they are)"
)


def layout_requirements(rendered: Rendered, own_text: bool) -> list[TemplateProblem]:
    """The links and the address every marketing email must carry, found in a sample render.
    The plain text is checked on its own only when the layout has its own text version (a
    derived one follows the HTML)."""
    links, address = sample_links(), _squash(controller_values()["address"])
    collector = _HrefCollector()
    collector.feed(rendered.html)
    visible, text = _squash(html_to_text(rendered.html)), _squash(rendered.text)
    problems = []
    for found_in_html, found_in_text, message, name in (
        (
            links.unsubscribe_url in collector.hrefs,
            links.unsubscribe_url in text,
            _MISSING_UNSUBSCRIBE,
            "{{ unsubscribe_url }}",
        ),
        (
            links.preferences_url in collector.hrefs,
            links.preferences_url in text,
            _MISSING_PREFERENCES,
            "{{ preferences_url }}",
        ),
        (address in visible, address in text, _MISSING_ADDRESS, "{{ controller.address }}"),
    ):
        if not found_in_html:
            problems.append(TemplateProblem(message, part="layout"))
        if not found_in_text and (own_text or found_in_html):
            problems.append(
                TemplateProblem(f"the plain-text layout must contain {name}", part="layout_text")
            )
    return problems
