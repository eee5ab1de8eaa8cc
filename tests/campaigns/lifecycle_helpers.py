"""Helpers for the campaign lifecycle, targeting, page and archive tests.

Plain functions rather than fixtures, so the test modules stay independent of one another.
"""

from __future__ import annotations

import itertools

from tests.operators import make_operator
from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.models import Contact, MailingList
from tidings.campaigns.models import Campaign, Delivery, Sender, Template

_numbers = itertools.count(1)


def use_outbox(settings_fixture) -> None:
    """Send through the embedded outbox (the installation's default), not the test runner's
    locmem backend, so tests read messages as an operator would."""
    settings_fixture.MAILERS = {
        "default": {"BACKEND": "tidings.campaigns.transports.outbox.EmailBackend"}
    }


def make_list(name: str = "Product news", topic: str = "product news", **extra) -> MailingList:
    return MailingList.objects.create(name=name, topic=topic, **extra)


def person(name: str, email: str | None = None, **fields) -> Contact:
    email = email or f"{name.split()[0].lower()}{next(_numbers)}@example.com"
    contact, _ = do_create_contact({"name": name, "email": email, **fields}, purpose="newsletter")
    return contact


def subscriber(name: str, *lists: MailingList, email: str | None = None, **fields) -> Contact:
    contact = person(name, email, **fields)
    for mailing_list in lists:
        do_subscribe(contact, mailing_list, source="form", wording_text="Yes", confirmed=True)
    return contact


def make_sender(verified: bool = True, email: str = "news@example.co.uk") -> Sender:
    return Sender.objects.create(name="Example News", email=email, verified=verified)


def make_template(name: str = "Monthly") -> Template:
    from tidings.campaigns.rendering import ensure_default_layout

    return Template.objects.create(
        name=name,
        layout=ensure_default_layout(),
        format=Template.Format.MARKDOWN,
        subject="News for you",
        body="# This month\n\nWe shipped the thing you asked for.",
    )


def make_campaign(
    *lists: MailingList,
    status: str = Campaign.Status.DRAFT,
    topic: str = "product news",
    sender: Sender | None = None,
    segments=(),
    with_template: bool = False,
    **fields,
) -> Campaign:
    """A campaign in any state, set up directly (the lifecycle tests check the actions)."""
    values = {
        "name": f"Campaign {next(_numbers)}",
        "subject": "News for you",
        "body": "# This month\n\nWe shipped the thing you asked for.",
        "topic": topic,
        "status": status,
        "sender": sender,
        **fields,
    }
    if with_template:
        template = make_template(f"Template {next(_numbers)}")
        values |= {"template": template, "layout": template.layout}
    campaign = Campaign.objects.create(**values)
    campaign.lists.set(lists)
    campaign.segments.set(segments)
    return campaign


def queue(campaign: Campaign, contacts, status: str = Delivery.Status.QUEUED) -> list[Delivery]:
    """Delivery rows made directly, for tests of what actions do to a queue."""
    return Delivery.objects.bulk_create(
        [Delivery(campaign=campaign, contact=c, status=status) for c in contacts]
    )


def make_editor(username: str = "editor"):
    """A staff user who is not an owner: the editor role."""
    return make_operator(username, "editor", password=None)


def schedule_confirmed(client, campaign: Campaign, data: dict):
    """Post the schedule form, then confirm on the page it shows (as an operator would); returns
    the confirmation's response.  The first answer must be the confirmation page."""
    from django.urls import reverse

    url = reverse("campaigns:schedule", args=[campaign.pk])
    shown = client.post(url, data)
    assert shown.status_code == 200 and "summary" in shown.context, shown.content[:3000]
    fingerprint = shown.context["summary"].fingerprint
    return client.post(url, {**data, "confirm": "1", "fingerprint": fingerprint})
