"""Journey mail on the wire: signed like campaign mail, with the one-click unsubscribe headers."""

from __future__ import annotations

import re

import dkim as dkimpy
import pytest

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.test_dkim import dns_from, keygen
from tests.journeys.helpers import make_list, subscriber, welcome
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
