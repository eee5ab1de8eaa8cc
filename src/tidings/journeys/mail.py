"""A journey's send step: who may get its mail now, the step's compiled message, and each
person's message (an unsaved ``OutgoingMessage`` the engine inserts in bulk)."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from django.urls import reverse

from tidings.audience.consent import tracking_enabled
from tidings.audience.models import Contact
from tidings.audience.suppression import suppression_reasons
from tidings.audience.tokens import (
    absolute_url,
    list_unsubscribe_header,
    make_preferences_token,
    make_unsubscribe_token,
    unsubscribe_mailto_address,
)
from tidings.campaigns.mail import sender_from_header
from tidings.campaigns.models import Campaign, Layout, Template
from tidings.campaigns.queue import default_transport, new_message
from tidings.campaigns.rendering import CompiledMessage, MessageLinks, TemplateProblem
from tidings.campaigns.targeting import consent_condition

from .models import Journey, JourneyVersion
from .tracking import JourneyTracker, step_tracker, track_with


class StepError(Exception):
    """A step could not run (retried, then parked).  The message is shown to operators: never
    personal data."""


def send_refusals(journey: Journey, contacts: list[Contact]) -> dict[int, str]:
    """{contact id: why they may not get the journey's mail now} for those of ``contacts`` who
    may not: three queries for any number of people (suppression, then consent)."""
    suppressed = suppression_reasons(c.email for c in contacts)
    refusals: dict[int, str] = {}
    if journey.is_marketing:
        allowed = set(
            Contact.objects.filter(pk__in=[c.pk for c in contacts])
            .filter(consent_condition(journey.topic))
            .values_list("pk", flat=True)
        )
        for contact in contacts:
            reason = suppressed.get(contact.email)
            if reason:
                refusals[contact.pk] = f"address suppressed ({reason})"
            elif contact.pk not in allowed:
                refusals[contact.pk] = f'no consent to "{journey.topic}" emails'
        return refusals
    # Service mail (contract purpose): not refused for an unsubscribe from marketing, but never
    # to an address that bounced, complained or was erased.
    for contact in contacts:
        reason = suppressed.get(contact.email)
        if reason and reason != "unsubscribed":
            refusals[contact.pk] = f"address suppressed ({reason})"
    return refusals


def queued_refusals(pairs: list[tuple[Any, Contact]]) -> dict[int, str]:
    """{message id: why} for queued journey mail that may no longer go, checked by the delivery
    engine as it sends (``campaigns.engine.jobs.register_send_check``): the send step's own rule
    (``send_refusals``), again, for someone who withdrew or was suppressed while their message
    waited in the queue by a path that does not take them out of journeys at once (an operator
    removing them from a list, an address or domain added to the suppression list)."""
    by_journey: dict[int, list[tuple[Any, Contact]]] = {}
    for message, contact in pairs:
        pk = message.kind.removeprefix("journey:")
        if pk.isascii() and pk.isdigit():
            by_journey.setdefault(int(pk), []).append((message, contact))
    journeys = Journey.objects.in_bulk(list(by_journey))
    refused: dict[int, str] = {}
    for pk, items in by_journey.items():
        journey = journeys.get(pk)
        if journey is None:
            continue
        reasons = send_refusals(journey, [contact for _, contact in items])
        for message, contact in items:
            if reason := reasons.get(contact.pk):
                refused[message.pk] = f"no longer allowed when sent: {reason}"
    return refused


def send_refusal(journey: Journey, contact: Contact) -> str:
    """Why ``contact`` may not get the journey's mail now ("" when they may)."""
    return send_refusals(journey, [contact]).get(contact.pk, "")


def live_uses(template: Template | None, layout: Layout | None) -> list[str]:
    """The started journeys (active or paused) one of whose versions sends this template, or a
    template in this layout: each message reads it when it is sent (``compile_step``).  For
    ``template_actions.register_live_uses``."""
    if template is not None:
        names = {template.name}
    else:
        names = set(Template.objects.filter(layout=layout).values_list("name", flat=True))
    if not names:
        return []
    versions = JourneyVersion.objects.filter(
        journey__status__in=(Journey.Status.ACTIVE, Journey.Status.PAUSED)
    ).values_list("journey__name", "steps")
    found = {
        name
        for name, steps in versions
        if any(
            isinstance(step, dict)
            and step.get("kind") == "send_email"
            and step.get("template") in names
            for step in steps or ()
        )
    }
    return [f"the journey \u201c{name}\u201d" for name in sorted(found)]


def segment_live_uses(segment: Any) -> list[str]:
    """The started journeys (active or paused) that enrol whoever starts matching ``segment``
    (the ``segment_matched`` trigger).  For ``audience.segment_uses.register``."""
    journeys = Journey.objects.filter(
        status__in=(Journey.Status.ACTIVE, Journey.Status.PAUSED),
        trigger=Journey.Trigger.SEGMENT,
    ).order_by("name")
    found = [j.name for j in journeys if str(j.trigger_params.get("segment")) == str(segment.pk)]
    return [f"the journey \u201c{name}\u201d" for name in found]


# Compiled steps, by everything that goes into them (an edited template has a new updated_at):
# compiling costs far more than rendering.  Per process, at most 64.
_COMPILED: dict[tuple, CompiledMessage] = {}


def compile_step(journey: Journey, step: Mapping[str, Any]) -> CompiledMessage:
    template = Template.objects.select_related("layout").filter(name=step["template"]).first()
    if template is None:
        raise StepError(f'the template "{step["template"]}" no longer exists')
    key = (
        journey.pk,
        journey.sender_id,
        step.get("subject"),
        step.get("preheader"),
        template.pk,
        template.updated_at,
        template.layout.updated_at,
    )
    cached = _COMPILED.get(key)
    if cached is not None:
        return cached
    try:
        compiled = CompiledMessage.for_campaign(_campaign(journey, template, step))
    except TemplateProblem as exc:
        raise StepError(f"the template does not render: {exc}") from None
    if len(_COMPILED) >= 64:
        _COMPILED.clear()
    _COMPILED[key] = compiled
    return compiled


def _campaign(journey: Journey, template: Template, step: Mapping[str, Any]) -> Campaign:
    return Campaign(
        name=journey.name,
        subject=step.get("subject") or template.subject,
        preheader=step.get("preheader") or "",
        body=template.body,
        text_body=template.text_body,
        format=template.format,
        layout=template.layout,
        topic=journey.topic,
        sender=journey.sender,
    )


def render_problem(step: Mapping[str, Any], template: Template) -> TemplateProblem | None:
    """Why a send step's subject and preheader, with its template, would not render (None
    when they would): the editor says so when the step is saved, not when it first runs."""
    try:
        CompiledMessage.for_campaign(_campaign(Journey(name="check"), template, step))
    except TemplateProblem as exc:
        return exc
    return None


class StepMail:
    """What every message of one send step shares, made once: the compiled step, the From,
    the constant headers, the links' addresses up to the token (``reverse`` costs ~30 µs a
    call: the campaign engine's ``Recipe`` does the same), and the tracker."""

    def __init__(self, journey: Journey, step: Mapping[str, Any]) -> None:
        self.journey = journey
        self.compiled = compile_step(journey, step)
        self.from_header = sender_from_header(journey.sender)
        domain = parseaddr(self.from_header)[1].rpartition("@")[2] or "localhost"
        label = journey.topic or "service messages"
        self.headers = {
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{label} <journey-{journey.pk}.{domain}>",
        }
        reply_to = journey.sender.reply_to if journey.sender else ""
        if reply_to:
            self.headers["Reply-To"] = reply_to
        self.mailto = unsubscribe_mailto_address(self.from_header)
        self.unsubscribe_prefix = absolute_url(reverse("public:unsubscribe", args=["T"]))[:-1]
        self.preferences_prefix = absolute_url(reverse("public:preferences", args=["T"]))[:-1]
        self.transport = default_transport()
        self.tracker: JourneyTracker | None = None
        if self.compiled.html_source and tracking_enabled():
            self.tracker = step_tracker(journey, self.compiled.html_source)

    def message(self, contact: Contact, enrolment_id: int, seq: int, *, track: bool) -> Any:
        """The person's message (an unsaved ``OutgoingMessage``).  Raises StepError."""
        unsubscribe = self.unsubscribe_prefix + make_unsubscribe_token(contact.pk, None, None)
        links = MessageLinks(
            unsubscribe_url=unsubscribe,
            preferences_url=self.preferences_prefix + make_preferences_token(contact.pk),
            view_url="",
        )
        try:
            rendered = self.compiled.render(contact, links)
        except TemplateProblem as exc:
            raise StepError(f"the template does not render: {exc}") from None
        document = rendered.html
        if document and track and self.tracker is not None:
            document = track_with(self.tracker, document, enrolment_id, seq)
        headers = {
            "List-Unsubscribe": list_unsubscribe_header(unsubscribe, self.mailto),
            **self.headers,
        }
        return new_message(
            contact,
            kind=f"journey:{self.journey.pk}",
            subject=rendered.subject,
            text=rendered.text,
            html=document,
            from_email=self.from_header,
            headers=headers,
            transport=self.transport,
        )
