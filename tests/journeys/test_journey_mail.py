"""Journey mail on the wire: signed like campaign mail, with the one-click unsubscribe headers."""

from __future__ import annotations

import re

import dkim as dkimpy
import pytest

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.test_dkim import dns_from, keygen
from tests.journeys.helpers import make_list, subscriber, welcome, welcome_mail_on_the_wire
from tidings import signals
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.models import Sender
from tidings.journeys import engine
from tidings.journeys.actions import do_enrol

pytestmark = pytest.mark.django_db


def test_journey_mail_is_dkim_signed_over_its_unsubscribe_headers(settings, tmp_path):
    settings.TIDINGS_DKIM_DIR = str(tmp_path / "dkim")
    settings.TIDINGS_DKIM_SELECTOR = "news2026"
    _, lookup = dns_from(keygen("example.co.uk"))
    sender = Sender.objects.create(name="Example News", email="news@example.co.uk", verified=True)
    received = welcome_mail_on_the_wire(settings, sender)
    assert dkimpy.verify(received.data, dnsfunc=lookup)
    signature = received.message["DKIM-Signature"]
    signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", signature).group(1).split(":")}
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    assert received.message["Subject"] == "Welcome, Ann"
    assert received.message["List-Id"].startswith("product news <journey-")


@pytest.mark.parametrize(
    "leave", ["unsubscribe", "removed from the list", "hard bounce", "complaint"]
)
def test_journey_mail_still_queued_when_the_person_leaves_is_not_sent(
    settings, leave, django_capture_on_commit_callbacks, django_user_model
):
    from tidings.audience.actions import do_unsubscribe_all
    from tidings.audience.operator import do_remove_from_list
    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys.models import Enrolment

    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        journey = welcome()
        news = make_list()
        ann = subscriber("Ann Example", news)
        bob = subscriber("Bob Example", make_list("Second", topic="product news"))
        do_enrol(journey, ann)
        do_enrol(journey, bob)
        engine.advance_due()  # the welcome step ran: both messages queued
        with django_capture_on_commit_callbacks(execute=True):
            if leave == "unsubscribe":
                do_unsubscribe_all(ann, source="operator")
            elif leave == "removed from the list":
                operator = django_user_model.objects.create(username="operator")
                do_remove_from_list([ann.pk], news, actor=operator)
            else:
                signal = signals.delivery_bounced if leave == "hard bounce" else None
                signal = signal or signals.delivery_complained
                signal.send(sender=None, contact_id=ann.pk, delivery_id=None, hard=True)
        assert Enrolment.objects.get(contact=ann).state == "exited"
        deliver_pending()
        assert [r.recipient for r in sink.received] == [bob.email]
        unsent = OutgoingMessage.objects.get(contact=ann)
        assert unsent.status == "skipped" and unsent.error.startswith("left the journey")
        assert (unsent.subject, unsent.html, unsent.headers) == ("", "", {})


@pytest.mark.parametrize("stop", ["address suppressed", "domain suppressed"])
def test_journey_mail_still_queued_is_checked_again_when_it_is_sent(
    settings, stop, django_capture_on_commit_callbacks, django_user_model
):
    """An operator adding someone's address or domain to the suppression list takes no one
    out of journeys at once: their mail already queued (behind a rate limit, a retry) must
    still not go, as campaign mail would not.  (An operator removing them from a list takes
    them out at once, as their own unsubscribe does: the test above.)"""
    from tidings.audience.suppression import do_add_suppressions
    from tidings.campaigns.models import OutgoingMessage

    operator = django_user_model.objects.create(username="operator")
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        journey = welcome()
        news = make_list()
        ann = subscriber("Ann Example", news)
        bob = subscriber("Bob Example", news, email="bob@example.org")
        do_enrol(journey, ann)
        do_enrol(journey, bob)
        engine.advance_due()  # the welcome step ran: both messages queued
        with django_capture_on_commit_callbacks(execute=True):
            if stop == "address suppressed":
                do_add_suppressions([ann.email], actor=operator)
            else:
                do_add_suppressions(["@" + ann.email.rpartition("@")[2]], actor=operator)
        deliver_pending()
        assert [r.recipient for r in sink.received] == [bob.email]
        unsent = OutgoingMessage.objects.get(contact=ann)
        assert unsent.status == "skipped"
        assert unsent.error.startswith("no longer allowed when sent")
        assert ann.email not in unsent.error
        assert (unsent.subject, unsent.html, unsent.headers) == ("", "", {})


@pytest.mark.parametrize("refused", ["the journey's mail", "a campaign's mail"])
def test_a_mailbox_refused_as_unknown_while_sending_takes_the_person_out_of_journeys(
    settings, refused, django_capture_on_commit_callbacks
):
    """A 550 "user unknown" while sending is a hard bounce, as a bounce report is: the person
    leaves every journey at once, and ``delivery_bounced`` (the webhooks' delivery.bounced)
    says so."""
    from tests.campaigns.delivery_helpers import sending_campaign
    from tidings.journeys.models import Enrolment

    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs)

    signals.delivery_bounced.connect(listener)
    try:
        with SmtpSink() as sink:
            settings.TIDINGS_TRANSPORTS = transports_for(sink)
            journey = welcome()
            news = make_list()
            ann = subscriber("Ann Example", news)
            do_enrol(journey, ann)
            if refused == "a campaign's mail":
                engine.advance_due()
                deliver_pending()  # the welcome mail went; Ann waits two days
                sending_campaign(news)
            else:
                engine.advance_due()
            sink.answers[ann.email] = [f"550 5.1.1 <{ann.email}>: Recipient address rejected"]
            with django_capture_on_commit_callbacks(execute=True):
                deliver_pending()
    finally:
        signals.delivery_bounced.disconnect(listener)
    enrolment = Enrolment.objects.get(contact=ann)
    assert (enrolment.state, enrolment.exit_reason) == ("exited", "hard bounce")
    assert [(h["contact_id"], h["hard"]) for h in heard] == [(ann.pk, True)]


def test_the_soft_bounce_that_reaches_the_limit_takes_the_person_out_of_journeys(
    settings, django_capture_on_commit_callbacks
):
    """The third soft bounce (``TIDINGS_SOFT_BOUNCE_LIMIT``) suppresses the address as a hard
    bounce: it is one for the journeys and the webhooks too (``delivery_bounced`` hard)."""
    from tests.campaigns.bounce_helpers import sample
    from tidings.campaigns.bounces.processing import do_record_inbound_mail
    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys.models import Enrolment

    settings.TIDINGS_SOFT_BOUNCE_LIMIT = 3
    journey = welcome()
    ann = subscriber("Ann Example", make_list())
    do_enrol(journey, ann)
    engine.advance_due()
    mail = OutgoingMessage.objects.get(contact=ann)
    OutgoingMessage.objects.filter(pk=mail.pk).update(status="sent")
    raw = sample("postfix_delayed.eml", recipient=ann.email, row=("o", mail.pk))
    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs["hard"])

    signals.delivery_bounced.connect(listener)
    try:
        for _ in range(3):
            with django_capture_on_commit_callbacks(execute=True):
                report = do_record_inbound_mail(raw, source="pipe")
    finally:
        signals.delivery_bounced.disconnect(listener)
    assert report.reason == "soft bounce 3 of 3 within 14 days: address suppressed"
    assert heard == [False, False, True]
    enrolment = Enrolment.objects.get(contact=ann)
    assert (enrolment.state, enrolment.exit_reason) == ("exited", "hard bounce")
