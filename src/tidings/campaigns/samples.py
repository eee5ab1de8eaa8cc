"""A campaign as a made-up person: previews, test messages and the public archive.

Nothing here changes a campaign's state (that is ``lifecycle.py``): a campaign is rendered as
the sample person (or a contact the operator picks) with links that act for nobody, and test
messages go to a few addresses in any state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.urls import reverse

from tidings.audience.emails import InvalidEmail, normalise_email
from tidings.audience.models import Contact
from tidings.audience.tokens import absolute_url
from tidings.lib.audit import audit

from .direct import send_test_messages
from .lifecycle import CampaignNotReady, Problem, template_problem
from .models import Campaign
from .rendering import CompiledMessage, MessageLinks, TemplateProblem

logger = logging.getLogger(__name__)

MAX_TEST_ADDRESSES = 5
# Links in previews, test messages and the public archive: they must not act for anyone.
SAMPLE_CONTACT = {
    "name": "Alex Example",
    "email": "alex@example.com",
    "company": "Example Ltd",
    "job_title": "Reader",
}


def sample_contact() -> Contact:
    """A made-up person (never saved) to render previews, test messages and the archive with."""
    return Contact(**SAMPLE_CONTACT)


def inert_links(campaign: Campaign):
    """Links for a message nobody real will act on: the preference-link request page (which
    asks for an address) and the archive.  A test recipient who clicks "unsubscribe" in a
    message rendered as some contact must not unsubscribe that contact."""
    harmless = absolute_url(reverse("public:preferences-link"))
    return MessageLinks(
        unsubscribe_url=harmless,
        preferences_url=harmless,
        # As the real messages have it (engine.py): a web version only in the public archive.
        view_url=absolute_url(reverse("archive:campaign", args=[campaign.pk]))
        if campaign.archive
        else "",
    )


def render_sample(campaign: Campaign, contact: Contact | None = None):
    """The campaign rendered as ``contact`` (default: ``sample_contact()``) with inert links.

    Raises CampaignNotReady when its template does not compile."""
    try:
        compiled = CompiledMessage.for_campaign(campaign)
    except TemplateProblem as exc:
        raise CampaignNotReady([template_problem(exc)]) from None
    return compiled.render(contact or sample_contact(), inert_links(campaign), preheader=True)


@dataclass
class TestSendResult:
    """Filled in when the transaction commits and the messages go out."""

    recipients: int
    sent: int = 0
    errors: list[str] = field(default_factory=list)


@transaction.atomic
def do_test_send(
    campaign: Campaign,
    addresses: Iterable[str],
    *,
    actor: Any,
    contact: Contact | None = None,
) -> TestSendResult:
    """Send the campaign, subject prefixed "[Test]", to a few addresses (not contacts: anyone),
    rendered as ``contact`` or the sample person, with inert links.  Works in any state.

    The messages go through the delivery engine's transport (the campaign's, else the first
    configured: the outbox in the demo), built as the real send builds them (same From,
    envelope sender, DKIM signature), once the transaction commits; the result's ``sent`` and
    ``errors`` are filled in then.
    """
    problems = []
    clean: list[str] = []
    given = [raw for raw in addresses if raw.strip()]
    for position, raw in enumerate(given, start=1):
        try:
            clean.append(normalise_email(raw))
        except InvalidEmail as exc:
            # Which one, by its place (the address itself is never repeated in a message).
            which = f"address {position} of {len(given)} is " if len(given) > 1 else ""
            problems.append(Problem(f"{which}not an email address: {exc}", "addresses"))
    clean = list(dict.fromkeys(clean))
    if not clean and not problems:
        problems.append(Problem("give at least one address", "addresses"))
    if len(clean) > MAX_TEST_ADDRESSES:
        problems.append(Problem(f"at most {MAX_TEST_ADDRESSES} addresses", "addresses"))
    sender = campaign.sender
    if sender is None:
        problems.append(Problem("choose a sender first", "sender"))
    elif not sender.verified:
        problems.append(Problem(f"the sender {sender} is not verified", "sender"))
    if problems:
        raise CampaignNotReady(problems)
    assert sender is not None
    rendered = render_sample(campaign, contact)
    recipients = clean
    result = TestSendResult(recipients=len(recipients))
    audit(
        "campaign.test_sent",
        actor=actor,
        obj=campaign,
        recipients=len(recipients),
        as_contact=contact.pk if contact is not None else None,
    )

    def send() -> None:
        try:
            outcome = send_test_messages(campaign, recipients, rendered)
        except Exception as exc:  # reported to the operator; never the address
            logger.warning("test messages of campaign %s not sent: %s", campaign.pk, exc)
            result.errors.append(type(exc).__name__)
            return
        result.sent = outcome.sent
        result.errors.extend(outcome.errors)

    transaction.on_commit(send)
    return result


def preview_contact(contact_id: int | None) -> Contact | None:
    """The contact to preview as: a real one chosen by the operator, or None for the sample."""
    if contact_id is None:
        return None
    return Contact.objects.filter(pk=contact_id).first()
