"""Campaign messages: check a template, compile it once, personalise it per contact.

The second of the sending layers (models → **rendering** → queue → lifecycle → engine): it
imports only the models (for the default layout).  Its modules: ``contract`` (what callers see:
``TemplateProblem``, ``MessageLinks``, ``Rendered``, ``Limits``), ``sandbox`` (the hardened Jinja
environment and its metering), ``placeholders`` and ``diagnostics`` (keeping Jinja tags intact
through the HTML libraries; saying where a template is wrong), ``markup`` (Markdown, nh3,
css-inline), ``text`` (the plain-text part), ``sources`` and ``default_layout.html``,
``assemble``, ``checks`` and ``compiled`` (``CompiledMessage``).

The delivery engine's contract::

    compiled = CompiledMessage.for_campaign(campaign)     # raises TemplateProblem
    rendered = compiled.render(contact, MessageLinks(unsubscribe_url=..., preferences_url=...,
                                                     view_url=...))
    rendered.subject, rendered.text, rendered.html

What compiling does, once per campaign: Markdown becomes HTML (markdown-it, CommonMark and
tables), the HTML is sanitised (nh3), put inside its layout, its CSS is inlined (css-inline), the
plain-text part is derived from it (or the operator's own text is used), and the three parts are
compiled as Jinja templates.  All of this happens with the Jinja tags still in: they are swapped
for inert placeholders first (HTML comments where they stand between elements, plain tokens in
attribute values) because both libraries re-serialise the HTML and would otherwise mangle them
(css-inline moves ``{% for %}`` out of a ``<table>`` and escapes ``<`` in ``{% if a < b %}``).
Per contact only the three Jinja templates run: about 50 µs for a 10 KB newsletter on this
machine (bench/render.py), against a budget of a third of a millisecond.

Personalisation runs in a hardened Jinja sandbox (``CampaignSandbox``):
- the templates see plain values only (``contact_values``, the links, the controller's name and
  address, the subject), never a model instance;
- a missing value renders as nothing (``{{ contact.attributes.plan | default("friend") }}`` for a
  fallback), also inside arithmetic and comparisons, so a gap in one contact's data never stops a
  campaign; a value of an unexpected type that still breaks the template gets a second render
  with the contact's attributes left out;
- names starting with ``_`` (``__class__``, ``__globals__``...), ``str.format`` and ``%``
  formatting, ``{% include %}``/``{% import %}``/``{% extends %}`` and switching autoescaping
  off are refused; only an allow-list of filters, globals and string/dict methods can be called;
- every render is metered: loop iterations, calls, the size of every string the template makes and
  of everything it outputs, and the time taken (``Limits``).  A template over a limit is refused at
  save time (``check_template`` renders it for a sample contact under ``CHECK_LIMITS``); if one
  still exceeds ``SEND_LIMITS`` while sending, ``render`` raises ``TemplateProblem`` instead of
  hanging, so the engine can fail the campaign with a reason.
"""

from .compiled import (
    CompiledMessage,
    campaign_parts,
    check_layout,
    check_template,
    extra_values,
    render_subject,
)
from .contract import (
    CHECK_LIMITS,
    LAYOUT_VARIABLES,
    SAMPLE_CONTACT,
    SEND_LIMITS,
    VARIABLES,
    Limits,
    MessageLinks,
    Rendered,
    TemplateProblem,
    contact_values,
)
from .diagnostics import static_problems
from .markup import inline_css, markdown_to_html, sanitise_html
from .sandbox import (
    CampaignSandbox,
    RenderLimitExceeded,
    environment,
    render_metered,
    system_environment,
)
from .sources import DEFAULT_LAYOUT_NAME, Sources, default_layout_html, ensure_default_layout
from .text import html_to_text

__all__ = [
    "CHECK_LIMITS",
    "DEFAULT_LAYOUT_NAME",
    "LAYOUT_VARIABLES",
    "SAMPLE_CONTACT",
    "SEND_LIMITS",
    "VARIABLES",
    "CampaignSandbox",
    "CompiledMessage",
    "Limits",
    "MessageLinks",
    "RenderLimitExceeded",
    "Rendered",
    "Sources",
    "TemplateProblem",
    "campaign_parts",
    "check_layout",
    "check_template",
    "contact_values",
    "default_layout_html",
    "ensure_default_layout",
    "environment",
    "extra_values",
    "html_to_text",
    "inline_css",
    "markdown_to_html",
    "render_metered",
    "render_subject",
    "sanitise_html",
    "static_problems",
    "system_environment",
]
