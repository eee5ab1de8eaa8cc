"""An import that says people left ends their subscriptions here with the same effects as the
person's own unsubscribe or an operator's removal: ``contacts_unsubscribed`` once for the
people a batch withdrew, so their journeys end at once and ``contact.unsubscribed`` webhooks
are queued, in a few statements for the whole batch."""

from __future__ import annotations

import pytest

from tests.journeys.helpers import make_list, subscriber, welcome
from tidings import signals
from tidings.api.actions import do_create_webhook_endpoint
from tidings.api.models import WebhookDelivery
from tidings.audience.models import ConsentEvent, Subscription
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment

from .import_helpers import do_import, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def announced():
    """The contacts_unsubscribed signals sent: [(contact_ids, list_id)]."""
    sent = []

    def listener(sender, *, contact_ids, list_id, **kwargs):
        sent.append((tuple(contact_ids), list_id))

    signals.contacts_unsubscribed.connect(listener)
    yield sent
    signals.contacts_unsubscribed.disconnect(listener)


@pytest.mark.parametrize("status", ["Unsubscribed", "Cleaned", "Bounced"])
def test_an_imported_withdrawal_ends_the_journeys_and_queues_the_webhooks_in_one_batch(
    tmp_path, settings, django_capture_on_commit_callbacks, announced, status
):
    settings.TIDINGS_DATA_DIR = str(tmp_path)
    news = make_list()
    ann = subscriber("Ann Example", news, email="ann@example.org")
    bob = subscriber("Bob Example", news, email="bob@example.org")
    cy = subscriber("Cy Example", news, email="cy@example.org")
    journey = welcome()
    for person in (ann, bob, cy):
        do_enrol(journey, person)
    engine.advance_due()
    endpoint = do_create_webhook_endpoint(
        url="https://hooks.example.com/in", events=["contact.unsubscribed"], actor=None
    )
    path = write(
        tmp_path,
        "Email Address,Name,Status\n"
        f"ann@example.org,Ann Example,{status}\n"
        "bob@example.org,Bob Example,Subscribed\n"
        f"cy@example.org,Cy Example,{status}\n",
    )

    with django_capture_on_commit_callbacks(execute=True):
        imp = do_import(path, news)

    assert imp.left_in_file == 2
    assert announced == [(tuple(sorted([ann.pk, cy.pk])), news.pk)]  # once, for the batch
    states = dict(Enrolment.objects.values_list("contact_id", "state"))
    assert states == {ann.pk: "exited", bob.pk: "active", cy.pk: "exited"}
    queued = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("pk")
    assert sorted(d.data["contact_id"] for d in queued) == sorted([ann.pk, cy.pk])
    assert {(d.event, d.data["list_id"]) for d in queued} == {("contact.unsubscribed", news.pk)}
    statuses = dict(Subscription.objects.values_list("contact_id", "status"))
    left = "unsubscribed" if status == "Unsubscribed" else "bounced"
    assert statuses == {ann.pk: left, bob.pk: "confirmed", cy.pk: left}


def _import_statuses(tmp_path, settings, rows: str):
    settings.TIDINGS_DATA_DIR = str(tmp_path)
    news = make_list()
    for name in ("ann", "bob", "cy", "dee"):
        subscriber(f"{name.title()} Example", news, email=f"{name}@example.org")
    imp = do_import(write(tmp_path, "Email Address,Name,Status\n" + rows), news)
    return news, imp


def test_an_imported_bounce_or_complaint_says_so_on_the_subscription_not_unsubscribed(
    tmp_path, settings
):
    """A contact page reading "unsubscribed" for an address the earlier tool cleaned (it
    bounced) tells the operator the person withdrew, which they did not; a spam report is a
    complaint.  Each ends as it happened, and only those who withdrew have a withdrawal in
    their consent history.  The address's case (ANN@ in the file) does not matter."""
    news, imp = _import_statuses(
        tmp_path,
        settings,
        "ANN@example.org,Ann Example,Cleaned\n"
        "bob@example.org,Bob Example,Unsubscribed\n"
        "cy@example.org,Cy Example,Spam\n"
        "dee@example.org,Dee Example,Subscribed\n",
    )

    assert imp.left_in_file == 3
    statuses = dict(Subscription.objects.values_list("contact__email", "status"))
    assert statuses == {
        "ann@example.org": "bounced",
        "bob@example.org": "unsubscribed",
        "cy@example.org": "complained",
        "dee@example.org": "confirmed",
    }
    unsubscribed_at = dict(Subscription.objects.values_list("contact__email", "unsubscribed_at"))
    assert unsubscribed_at["ann@example.org"] is None  # the mailbox's doing, not the person's
    assert unsubscribed_at["bob@example.org"] is not None
    withdrawn = ConsentEvent.objects.filter(action="withdrawn", mailing_list=news)
    assert set(withdrawn.values_list("contact__email", "source", "source_ref")) == {
        ("bob@example.org", "import", f"import:{imp.pk}"),
        ("cy@example.org", "import", f"import:{imp.pk}"),
    }
