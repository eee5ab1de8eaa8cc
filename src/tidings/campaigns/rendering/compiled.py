"""The compiled message: checked and compiled once per campaign, personalised per contact."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError

from . import contract
from .assemble import assemble
from .checks import check_sources, layout_requirements, too_long
from .contract import (
    SAMPLE_CONTACT,
    SEND_LIMITS,
    Limits,
    MessageLinks,
    Rendered,
    TemplateProblem,
    contact_values,
    controller_values,
    sample_links,
)
from .diagnostics import (
    runtime_message,
    template_line,
)
from .sandbox import (
    RenderLimitExceeded,
    environment,
    metering,
)
from .sources import Sources, default_layout_html, sources_for

logger = logging.getLogger("tidings.campaigns.rendering")


def compile_checked(
    sources: Sources, limits: Limits = SEND_LIMITS
) -> tuple[CompiledMessage | None, list[TemplateProblem]]:
    """Check everything, compile, and render the sample contact: (message, []) or (None, why)."""
    problems = check_sources(sources)
    if problems:
        return None, problems
    try:
        compiled = CompiledMessage(sources, limits=limits)
    except TemplateProblem as problem:
        return None, [problem]
    values = {
        "contact": contact_values(SAMPLE_CONTACT),
        "unsubscribe_url": sample_links().unsubscribe_url,
        "preferences_url": sample_links().preferences_url,
        "view_url": sample_links().view_url,
    }
    try:
        rendered = compiled._render(values, contract.CHECK_LIMITS, False)
    except RenderFailed as failure:
        return None, [failure.problem(with_details=True)]
    problems = layout_requirements(rendered, bool(sources.layout_text.strip()))
    return (None if problems else compiled), problems


def layout_part(problem: TemplateProblem, text_part: str) -> TemplateProblem:
    if problem.part == "layout_text":
        problem.part = text_part
    return problem


def check_layout(html: str, text: str = "") -> list[TemplateProblem]:
    """What keeps a layout from being used; [] when it can be saved.

    A layout must contain ``{{ content }}`` once (and so must its plain-text version, when it has
    one), a link to ``{{ unsubscribe_url }}`` and one to ``{{ preferences_url }}``, and the
    controller's postal address (``{{ controller.address }}``), in the HTML and in the text.
    Problems in the HTML have part "layout"; in the plain-text version, part "text".
    """
    sources = Sources(
        subject="Sample", body="<p>Sample</p>", fmt="html", layout_html=html, layout_text=text
    )
    _, problems = compile_checked(sources)
    return [layout_part(p, "text") for p in problems if p.part in ("layout", "layout_text")]


def check_template(
    subject: str,
    body: str,
    fmt: str,
    text_body: str = "",
    layout: Any = None,
    *,
    preheader: str = "",
) -> list[TemplateProblem]:
    """What keeps a campaign body from being sent; [] when it can be saved and used.

    ``fmt`` is "markdown", "html" or "blocks"; ``layout`` a Layout (None: the default
    layout).  Checks the syntax, that only known variables are used (unknown ones would print
    nothing: a typo), the refused constructs, a render for a sample contact within
    CHECK_LIMITS, and that the layout carries the unsubscribe and preference links and the
    postal address.  Problems in the
    layout have part "layout" (the plain-text layout's too).
    """
    if fmt not in ("markdown", "html", "blocks"):
        return [TemplateProblem(f'unknown format "{fmt}"', part="body")]
    try:
        sources = sources_for(subject, body, fmt, text_body, layout, preheader)
    except TemplateProblem as problem:  # blocks that do not make a document
        return [problem]
    _, problems = compile_checked(sources)
    found = [layout_part(p, "layout") for p in problems]
    if fmt == "blocks":
        found += _contrast_problems(body, layout)
    return found


def _contrast_problems(body: str, layout: Any = None) -> list[TemplateProblem]:
    """Colours of a block document too faint to read (WCAG AA) on the layout's background, as
    body problems."""
    from ..blocks.compiler import BlocksInvalid, describe, parse
    from ..blocks.contrast import contrast_errors, layout_background

    try:
        document = parse(body or "")
    except BlocksInvalid:  # already reported by the compile above
        return []
    blocks = [b.model_dump() for b in document.blocks]
    background = layout_background(layout.html if layout is not None else None)
    return [
        TemplateProblem(describe(e, blocks), part="body")
        for e in contrast_errors(document, background)
    ]


class RenderFailed(Exception):
    def __init__(self, part: str, error: BaseException) -> None:
        super().__init__(part)
        self.part = part
        self.error = error

    def problem(self, *, with_details: bool = False) -> TemplateProblem:
        problem = TemplateProblem(runtime_message(self.error), part=self.part)
        if with_details and self.part == "subject":
            problem.line = template_line(self.error)
        return problem


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as plain data (str, numbers, booleans, None, lists and dicts of them): an object
    handed to a template could lead the sandbox to the database; anything else becomes its text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if depth > 5:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return str(value)


def extra_values(context: Mapping[str, Any]) -> dict[str, Any]:
    """A message's extra variables (``data`` in templates) as plain data."""
    return {str(name): _plain(value) for name, value in context.items()}


def campaign_parts(campaign: Any) -> tuple[str, str, str, Any]:
    """(body, format, text, layout) a campaign is sent with: a blank body takes its template's
    body, format and text; no layout of its own takes its template's (None: the default
    layout).  ``CompiledMessage.for_campaign`` compiles these; ``campaigns.fingerprint`` hashes
    them."""
    template = campaign.template if campaign.template_id else None
    body, fmt, text_body = campaign.body, campaign.format, campaign.text_body
    if not (body or "").strip() and template is not None:
        body, fmt, text_body = template.body, template.format, template.text_body
    layout = campaign.layout if campaign.layout_id else None
    if layout is None and template is not None:
        layout = template.layout
    return body, fmt, text_body, layout


class CompiledMessage:
    """A campaign's message, compiled once; ``render`` personalises it for one contact.

    Build one with ``for_campaign``, ``for_template`` or ``from_sources`` (each checks first and
    raises the first TemplateProblem).  ``html_source`` and ``text_source`` are the compiled
    Jinja sources, for inspection.
    """

    def __init__(self, sources: Sources, *, limits: Limits = SEND_LIMITS) -> None:
        built = assemble(sources)
        globals_ = {"controller": controller_values()}
        text_env, html_env = environment(False), environment(True)
        try:
            self._subject = text_env.from_string(sources.subject, globals=globals_)
            self._html = html_env.from_string(built.html, globals=globals_)
            self._text = text_env.from_string(built.text, globals=globals_)
        except TemplateSyntaxError as exc:  # the parts were checked: this is the merged whole
            raise TemplateProblem(
                f"the assembled message does not compile: {exc.message}", part="body"
            ) from None
        for template in (self._subject, self._html, self._text):
            # Jinja keeps a template's globals as a ChainMap over the environment's, and copies
            # it into every render's context: a plain dict makes that copy 4x cheaper.
            template.globals = dict(template.globals)
        self._text_env, self._globals = text_env, globals_  # the preheader, when asked for
        self.sources = sources  # plain strings: a builder process compiles its own copy
        self.html_source = built.html
        self.text_source = built.text
        self.limits = limits
        self._warned = False

    @classmethod
    def from_sources(
        cls,
        *,
        subject: str,
        body: str,
        fmt: str = "markdown",
        text_body: str = "",
        layout_html: str | None = None,
        layout_text: str = "",
        preheader: str = "",
        limits: Limits = SEND_LIMITS,
    ) -> CompiledMessage:
        """Check and compile from plain strings (``layout_html`` None: the default layout)."""
        sources = Sources(
            subject=subject,
            body=body,
            fmt=fmt,
            text_body=text_body,
            layout_html=default_layout_html() if layout_html is None else layout_html,
            layout_text=layout_text,
            preheader=preheader,
        )
        compiled, problems = compile_checked(sources, limits)
        if problems or compiled is None:
            raise problems[0]
        return compiled

    @classmethod
    def for_campaign(cls, campaign: Any) -> CompiledMessage:
        """The campaign's subject, preheader, body, format, text and layout, compiled.

        A campaign whose body is blank uses its template's body, format and text; one without a
        layout uses its template's, or the default layout.  Raises TemplateProblem.
        """
        body, fmt, text_body, layout = campaign_parts(campaign)
        return cls._checked(
            sources_for(campaign.subject, body, fmt, text_body, layout, campaign.preheader)
        )

    @classmethod
    def for_template(cls, template: Any, subject: str | None = None) -> CompiledMessage:
        """A saved Template with its layout, compiled (for previews and test sends)."""
        subject = template.subject if subject is None else subject
        return cls._checked(
            sources_for(
                subject, template.body, template.format, template.text_body, template.layout, ""
            )
        )

    @classmethod
    def _checked(cls, sources: Sources) -> CompiledMessage:
        if sources.fmt not in ("markdown", "html"):
            raise TemplateProblem(f'unknown format "{sources.fmt}"', part="body")
        compiled, problems = compile_checked(sources)
        if problems or compiled is None:
            raise layout_part(problems[0], "layout")
        return compiled

    def render(
        self,
        contact: Any,
        links: MessageLinks,
        context: Mapping[str, Any] | None = None,
        *,
        preheader: bool = False,
    ) -> Rendered:
        """The message for one contact.

        ``context``: extra values for the template (transactional mail: an order number, a
        link), as ``data``: ``{{ data.order_number }}``; plain data only (``extra_values``).
        ``preheader``: fill in ``Rendered.preheader`` too (previews and the archive show it).

        Never raises because of the contact's data: missing values print as nothing, and if a
        value of an unexpected type still breaks the template, it is rendered again without the
        contact's attributes.  Raises TemplateProblem only when the template itself fails (over
        its Limits, a refused construct): the engine should then stop the campaign.
        """
        values: dict[str, Any] = {
            "contact": contact_values(contact),
            "unsubscribe_url": links.unsubscribe_url,
            "preferences_url": links.preferences_url,
            "view_url": links.view_url,
            "data": extra_values(context) if context else {},
        }
        try:
            return self._render(values, self.limits, preheader)
        except RenderFailed as failure:
            if not values["contact"]["attributes"]:
                raise failure.problem() from None
            first = failure
        values["contact"] = {**values["contact"], "attributes": {}}
        try:
            rendered = self._render(values, self.limits, preheader)
        except RenderFailed as failure:
            raise failure.problem() from None
        if not self._warned:  # once per campaign: the reason, never the data
            self._warned = True
            logger.warning(
                "contact %s: rendered without attributes after %s",
                getattr(contact, "pk", None),
                type(first.error).__name__,
            )
        return rendered

    def _render(self, values: dict[str, Any], limits: Limits, with_preheader: bool) -> Rendered:
        part = "subject"
        preheader = ""
        try:
            with metering(limits):
                subject = " ".join(self._subject.render(values).split())
                values["campaign"] = {"subject": subject}
                part = "body"
                html = self._html.render(values)
                part = "text"
                text = self._text.render(values).lstrip("\n")  # a false {% if %} at the top
                if with_preheader and self.sources.preheader.strip():
                    part = "preheader"
                    template = self._text_env.from_string(
                        self.sources.preheader, globals=self._globals
                    )
                    preheader = " ".join(template.render(values).split())
        except Exception as exc:
            raise RenderFailed(part, exc) from exc
        for part, output in (("body", html), ("text", text), ("subject", subject)):
            if len(output) > limits.output_chars:
                raise RenderFailed(part, RenderLimitExceeded(too_long(limits)))
        return Rendered(subject=subject, text=text, html=html, preheader=preheader)


@functools.lru_cache(maxsize=256)
def _compiled_subject(subject: str) -> CompiledMessage:
    # The subject alone, with a placeholder body: a subject that was sent compiles again.
    return CompiledMessage.from_sources(subject=subject, body="-")


def render_subject(subject: str, contact: Any, links: MessageLinks) -> str:
    """A subject as ``contact`` reads it ("Hello {{ contact.first_name }}" -> "Hello Ada"):
    for the send confirmation's sample person and the access package's "as you received it".
    Raises TemplateProblem when it does not render."""
    if "{" not in subject:
        return subject
    return _compiled_subject(subject).render(contact, links).subject
