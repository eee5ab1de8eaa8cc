"""Journey mail on the wire: signed like campaign mail, with the one-click unsubscribe headers."""

from __future__ import annotations

import re

import dkim as dkimpy
import pytest

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.test_dkim import dns_from, keygen
from tests.journeys.helpers import make_list, subscriber, welcome
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
    journey = welcome()
    journey.sender = sender
    journey.save()
    do_enrol(journey, subscriber("Ann Example", make_list(), email="ann@example.org"))
    engine.advance_due()
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        deliver_pending()
    [received] = sink.received
    assert dkimpy.verify(received.data, dnsfunc=lookup)
    signature = received.message["DKIM-Signature"]
    signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", signature).group(1).split(":")}
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post"} <= signed
    assert received.message["Subject"] == "Welcome, Ann"
    assert received.message["List-Id"].startswith("product news <journey-")


@pytest.mark.parametrize("leave", ["unsubscribe", "hard bounce", "complaint"])
def test_journey_mail_still_queued_when_the_person_leaves_is_not_sent(
    settings, leave, django_capture_on_commit_callbacks
):
    from tidings.audience.actions import do_unsubscribe_all
    from tidings.campaigns.models import OutgoingMessage
    from tidings.journeys.models import Enrolment

    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        journey = welcome()
        ann = subscriber("Ann Example", make_list())
        bob = subscriber("Bob Example", make_list("Second", topic="product news"))
        do_enrol(journey, ann)
        do_enrol(journey, bob)
        engine.advance_due()  # the welcome step ran: both messages queued
        with django_capture_on_commit_callbacks(execute=True):
            if leave == "unsubscribe":
                do_unsubscribe_all(ann, source="operator")
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
