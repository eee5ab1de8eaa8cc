"""What the event loop needs to build a campaign's messages, prepared in the database thread.

``CampaignContext`` holds one sending campaign: its template compiled once, its constant headers
encoded once, its DKIM key loaded, its link prefixes resolved, and the SQL of "these contacts, if
they may still be emailed".  ``OneOffFactories`` does the same for one-off messages, one factory
per (From, kind).  Both are read-only once made, so the event loop (or a builder process) can
use them without the database.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL
from django.urls import reverse

from tidings.audience.consent import tracking_enabled
from tidings.audience.models import Contact
from tidings.audience.tokens import (
    absolute_url,
    list_unsubscribe_header,
    make_preferences_token,
    make_unsubscribe_token,
    unsubscribe_mailto_address,
)

from ..config import DeliveryConfig
from ..dkim import signer_for
from ..mail import sender_from_header
from ..messages import (
    MessageFactory,
    domain_of,
    envelope_sender,
    message_id_for,
    to_header,
    verp_address,
    wire_address,
)
from ..queue import Claimed
from ..rendering import CompiledMessage, MessageLinks, Sources
from ..targeting import consent_condition
from ..tracking import LinkTracker
from ..transports.base import Email


@dataclass(frozen=True)
class Recipe:
    """Everything needed to build a campaign's messages, in plain picklable values: what a
    builder process receives (``builders``) to make its own ``CampaignMessages``."""

    key: str  # changes when the campaign is prepared again
    campaign_id: int
    sources: Sources
    factory: MessageFactory
    headers: dict[str, str]
    from_header: str
    domain: str
    mail_from: str
    verp: bool
    list_pk: int | None
    mailto: str
    unsubscribe_prefix: str
    preferences_prefix: str
    view_url: str
    tracked_links: dict[str, int] | None
    tracking_prefixes: tuple[str, str] = ("", "")  # open, click (``tracking.tracking_prefixes``)


class CampaignMessages:
    """Builds one campaign's messages: needs no database, so it runs in the event loop's thread
    or in a builder process alike (``from_recipe``)."""

    compiled: CompiledMessage
    tracker: LinkTracker | None
    recipe: Recipe
    # Copied from the recipe by _use (attribute look-ups are on the per-message path).
    factory: MessageFactory
    headers: dict[str, str]
    from_header: str
    domain: str
    mail_from: str
    verp: bool
    list_pk: int | None
    mailto: str
    unsubscribe_prefix: str
    preferences_prefix: str
    view_url: str

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> CampaignMessages:
        messages = cls.__new__(cls)
        messages._use(recipe, CompiledMessage(recipe.sources))
        return messages

    def _use(self, recipe: Recipe, compiled: CompiledMessage) -> None:
        self.recipe = recipe
        self.compiled = compiled
        for name in ("factory", "headers", "from_header", "domain", "mail_from", "verp"):
            setattr(self, name, getattr(recipe, name))
        for name in ("list_pk", "mailto", "unsubscribe_prefix", "preferences_prefix", "view_url"):
            setattr(self, name, getattr(recipe, name))
        links = recipe.tracked_links
        self.tracker = (
            LinkTracker(recipe.campaign_id, links, recipe.tracking_prefixes)
            if links is not None
            else None
        )

    def links_for(self, contact, delivery_id: int) -> tuple[MessageLinks, str]:
        """The contact's links and List-Unsubscribe header: what ``audience.tokens``'
        ``unsubscribe_url``, ``preferences_url`` and ``list_unsubscribe_headers`` make (a test
        holds them equal), at a third of the cost."""
        token = make_unsubscribe_token(contact.pk, self.list_pk, delivery_id)
        unsubscribe_url = self.unsubscribe_prefix + token
        header = list_unsubscribe_header(unsubscribe_url, self.mailto)
        links = MessageLinks(
            unsubscribe_url=unsubscribe_url,
            preferences_url=self.preferences_prefix + make_preferences_token(contact.pk),
            view_url=self.view_url,
        )
        return links, header

    def email_for(self, job: Job, wants_bytes: bool) -> Email:
        return self.build(job.row.id, job.contact, job.track, wants_bytes)

    def build(self, row_id: int, contact: Any, track: bool, wants_bytes: bool) -> Email:
        """The message of delivery ``row_id`` to ``contact`` (anything with ``pk``, ``name``,
        ``email`` and the fields templates see), tracked or not; with its bytes when the
        transport wants them."""
        links, unsubscribe_header = self.links_for(contact, row_id)
        rendered = self.compiled.render(contact, links)
        html = rendered.html
        if track and self.tracker is not None:
            html = self.tracker.apply(html, row_id)
        recipient, smtputf8 = wire_address(contact.email)
        message_id = message_id_for("d", row_id, self.domain)
        email = Email(
            mail_from=(verp_address(self.mail_from, "d", row_id) if self.verp else self.mail_from),
            recipient=recipient,
            message_id=message_id,
            from_header=self.from_header,
            subject=rendered.subject,
            text=rendered.text,
            html=html,
            headers={**self.headers, "List-Unsubscribe": unsubscribe_header},
            smtputf8=smtputf8,
        )
        if wants_bytes:
            build = functools.partial(
                self.factory.build,
                to=to_header(contact.name, recipient),
                subject=rendered.subject,
                text=rendered.text,
                html=html,
                message_id=message_id,
                headers={"List-Unsubscribe": unsubscribe_header},
            )
            email.data = build(eight_bit=True)
            email.rebuild = build
        return email


class CampaignContext(CampaignMessages):
    """One sending campaign, prepared in the database thread (template compiled, constant headers
    encoded, DKIM key loaded, link table stored, consent query compiled), then used read-only by
    the event loop; ``recipe`` is what a builder process needs of it."""

    def __init__(self, campaign: Any, config: DeliveryConfig | None = None) -> None:
        config = config or DeliveryConfig.from_settings()
        self.id = campaign.pk
        self.topic = campaign.topic
        self.route = campaign.transport
        lists = list(campaign.lists.filter(closed_at__isnull=True))
        # One list: its own unsubscribe link.  Several, or a segment: one click leaves them all.
        self.unsubscribe_list = lists[0] if len(lists) == 1 else None
        recipe, compiled = self._prepare(campaign, config)
        self._use(recipe, compiled)
        # A/B variants: each compiled once, with its own From name, subject, preheader or body;
        # a row's variant was fixed when the queue was made (``Claimed.variant_id``).
        self.variants: dict[int, CampaignMessages] = {}
        for variant in campaign.variants.all():
            variant_recipe, variant_compiled = self._prepare(variant.applied_to(campaign), config)
            messages = CampaignMessages.__new__(CampaignMessages)
            messages._use(variant_recipe, variant_compiled)
            self.variants[variant.pk] = messages
        self._compile_consent_query()

    def _prepare(self, campaign: Any, config: DeliveryConfig) -> tuple[Recipe, CompiledMessage]:
        compiled = CompiledMessage.for_campaign(campaign)
        sender = campaign.sender
        from_header = sender_from_header(sender)
        domain = domain_of(from_header)
        reply_to = campaign.reply_to or (sender.reply_to if sender else "")
        if self.unsubscribe_list is not None:
            list_name, list_key = self.unsubscribe_list.name, f"list-{self.unsubscribe_list.pk}"
        else:
            list_name, list_key = campaign.topic, "topic-" + slug(campaign.topic)
        headers = {
            "Reply-To": reply_to,
            "List-Id": f"{list_name} <{list_key}.{domain}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # Gmail's Feedback-ID: campaign : topic : type : sender.
            "Feedback-ID": f"{campaign.pk}:{slug(campaign.topic)}:campaign:tidings",
        }
        # Open/click tracking, when the policy tracks: the link table is stored once here; each
        # message of a person who allows it gets its pixel and rewritten links (tracking.py).
        tracker = (
            LinkTracker.for_campaign(campaign, compiled.html_source) if tracking_enabled() else None
        )
        recipe = Recipe(
            key=uuid.uuid4().hex,
            campaign_id=campaign.pk,
            sources=compiled.sources,
            factory=MessageFactory(
                from_header=from_header, headers=headers, signer=signer_for(from_header)
            ),
            headers=headers,
            from_header=from_header,
            domain=domain,
            mail_from=envelope_sender(from_header, config.bounce_address),
            # VERP (TIDINGS_BOUNCE_VERP, with TIDINGS_BOUNCE_ADDRESS): one envelope sender a row.
            verp=config.envelope_verp,
            list_pk=self.unsubscribe_list.pk if self.unsubscribe_list is not None else None,
            # The links' addresses up to the token, resolved once: reverse() costs ~30 µs a call.
            mailto=unsubscribe_mailto_address(from_header),  # at the sender's domain
            unsubscribe_prefix=absolute_url(reverse("public:unsubscribe", args=["T"]))[:-1],
            preferences_prefix=absolute_url(reverse("public:preferences", args=["T"]))[:-1],
            # "View in your browser": the public archive page, for campaigns shown there.
            view_url=(
                absolute_url(reverse("archive:campaign", args=[campaign.pk]))
                if campaign.archive
                else ""
            ),
            tracked_links=dict(tracker.links) if tracker is not None else None,
            tracking_prefixes=(
                (tracker.open_prefix, tracker.click_prefix) if tracker is not None else ("", "")
            ),
        )
        return recipe, compiled

    def messages_for(self, row: Claimed) -> CampaignMessages:
        """What builds the row's message: its A/B variant's, or the campaign's own."""
        if row.variant_id is not None:
            return self.variants.get(row.variant_id, self)
        return self

    def email_for(self, job: Job, wants_bytes: bool) -> Email:
        return self.messages_for(job.row).build(job.row.id, job.contact, job.track, wants_bytes)

    def _compile_consent_query(self) -> None:
        """The SQL of "these contacts, if they still consent to the campaign's topic", made
        once: compiling the ORM query (the targeting rule, ``targeting.consent_condition``) costs
        more than running it.  The ids travel as one parameter (an array; JSON on SQLite)."""
        if connection.vendor == "postgresql":
            ids_sql = "SELECT unnest(%s::bigint[])"
        else:
            ids_sql = "SELECT value FROM json_each(%s)"
        marker = "tidings:contact-ids"
        query = Contact.objects.filter(consent_condition(self.topic)).filter(
            pk__in=RawSQL(ids_sql, [marker])  # noqa: S611 - constant SQL, the ids a parameter
        )
        self.consent_sql, params = query.query.sql_with_params()
        self.consent_params = list(params)
        self.ids_at = self.consent_params.index(marker)

    def consenting(self, contact_ids: list[int]) -> Any:
        """The Contacts among ``contact_ids`` who may be emailed about the campaign's topic."""
        params = list(self.consent_params)
        params[self.ids_at] = (
            contact_ids if connection.vendor == "postgresql" else json.dumps(contact_ids)
        )
        return Contact.objects.raw(self.consent_sql, params)


class OneOffFactories:
    """Message factories for one-off messages, one per (From, kind)."""

    def __init__(self, config: DeliveryConfig | None = None) -> None:
        config = config or DeliveryConfig.from_settings()
        self._factories: dict[tuple[str, str, bool], MessageFactory] = {}
        self.mail_from = config.bounce_address
        self.verp = config.envelope_verp

    def prepare(self, from_email: str, kind: str, *, automatic: bool = True) -> MessageFactory:
        """Called in the database thread (it may read a DKIM key file).  ``automatic``: the
        message is written by tidings, not by a person (RFC 3834 ``Auto-Submitted``); a
        message that sets the header itself (an operator's reply: "no") keeps its own."""
        key = (from_email, kind, automatic)
        if key not in self._factories:
            self._factories[key] = MessageFactory(
                from_header=from_email,
                headers={
                    "Auto-Submitted": "auto-generated" if automatic else "",
                    # Exchange's and Outlook's out-of-office replies carry no Auto-Submitted
                    # to recognise them by; this asks them not to send one (MS-OXCMAIL).
                    "X-Auto-Response-Suppress": "OOF, AutoReply" if automatic else "",
                    "Feedback-ID": f"{slug(kind)}:system:tidings",
                },
                signer=signer_for(from_email),
            )
        return self._factories[key]

    def email_for(self, job: Job, wants_bytes: bool) -> Email:
        message = job.message
        assert message is not None and job.factory is not None
        recipient, smtputf8 = wire_address(job.contact.email)
        factory = job.factory
        message_id = message_id_for("o", job.row.id, factory.domain)
        headers = {str(k): str(v) for k, v in (message.headers or {}).items()}
        email = Email(
            mail_from=(
                verp_address(self.mail_from, "o", job.row.id)
                if self.verp
                else envelope_sender(message.from_email, self.mail_from)
            ),
            recipient=recipient,
            message_id=message_id,
            from_header=message.from_email,
            subject=message.subject,
            text=message.text,
            html=message.html,
            headers=headers,
            smtputf8=smtputf8,
            attachments=tuple(message.attachments or ()),
        )
        if wants_bytes:
            build = functools.partial(
                factory.build,
                to=to_header(job.contact.name, recipient),
                subject=message.subject,
                text=message.text,
                html=message.html,
                message_id=message_id,
                headers=headers,
                attachments=email.attachments,
            )
            email.data = build(eight_bit=True)
            email.rebuild = build
        return email


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "none"


@dataclass(slots=True)
class Job:
    row: Claimed
    contact: Any
    route: str
    campaign: CampaignContext | None = None
    message: Any = None  # OutgoingMessage (one-off)
    factory: MessageFactory | None = None  # one-off
    track: bool = False  # add the open pixel and rewrite links (the person allows tracking)
    email: Email | None = None  # built ahead by a builder process
    failure: Any = None  # or what went wrong building it (a queue.Result)
