"""An erasure that lands while a person's mail is being sent: the outbox (the demo's stored copy
of sent mail) keeps no copy of it.  The message was claimed and rendered before the erasure and
is stored at the engine's next flush, after it: the erasure blanked the copies it found, and the
late one must not bring their address, subject and text back."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.campaigns.delivery_helpers import make_list, sending_campaign, subscribers
from tidings.campaigns.engine import deliver_pending
from tidings.campaigns.mail import send_system_email
from tidings.campaigns.models import Delivery, OutboxMessage
from tidings.campaigns.transports.outbox import OutboxTransport
from tidings.rights.actions import do_erase_contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(settings):
    settings.TIDINGS_TRANSPORTS = None
    settings.TIDINGS_SMTP_URL = "outbox://"


@pytest.fixture
def erase_before_commit(monkeypatch):
    """Erase the people put in the returned list between the transport's send() (the message
    is rendered and handed over) and its commit() (the engine's flush stores it)."""
    to_erase: list = []
    commit = OutboxTransport.commit

    def erase_then_commit(self):
        while to_erase:
            do_erase_contact(to_erase.pop())
        commit(self)

    monkeypatch.setattr(OutboxTransport, "commit", erase_then_commit)
    return to_erase


def found_anywhere(address: str) -> list[str]:
    """The tables whose text columns hold ``address`` anywhere (a scan of the whole database,
    the outbox's stored message bytes included)."""
    hits = []
    needle = address.casefold()
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from introspection
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if isinstance(value, str) and needle in value.casefold():
                        hits.append(table)
    return hits


def test_campaign_mail_being_sent_when_the_person_is_erased_leaves_no_copy(
    outbox, erase_before_commit
):
    news = make_list()
    ada, bob = subscribers(news, 2)
    sending_campaign(news)
    erase_before_commit.append(ada)
    deliver_pending()
    assert found_anywhere(ada.email) == []
    assert [m.to for m in OutboxMessage.objects.all()] == [bob.email]  # the others' are kept
    assert Delivery.objects.filter(status="sent").count() == 2  # the statistics stay whole


def test_system_mail_being_sent_when_the_person_is_erased_leaves_no_copy(
    outbox, erase_before_commit
):
    ada, bob = subscribers(make_list(), 2)
    for person in (ada, bob):
        send_system_email(person, "preferences_link", {"preferences_url": "https://x/p/t"})
    erase_before_commit.append(ada)
    deliver_pending()
    assert found_anywhere(ada.email) == []
    assert [m.to for m in OutboxMessage.objects.all()] == [bob.email]
