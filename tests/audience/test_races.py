"""Two requests about the same person at the same moment, on PostgreSQL (where two web processes
really do write at once; SQLite's IMMEDIATE transactions run one writer at a time).

A race is made certain rather than hoped for: the test's own transaction holds the row (or the
unique-index entry) the racers need, waits until every racer is blocked on it, then commits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections, transaction

from tidings.audience.actions import (
    do_confirm_signup,
    do_create_contact,
    do_subscribe,
    do_unsubscribe_request,
)
from tidings.audience.models import Contact, MailingList, Subscription
from tidings.audience.tokens import ConfirmRequest, UnsubscribeRequest

pytestmark = pytest.mark.django_db(transaction=True)


def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL (SQLite runs one writer at a time)")


def _blocked_backends() -> int:
    """How many other sessions of this database wait on a lock."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot a transaction
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def race(racers: list[Callable[[], Any]], *, while_holding: Callable[[], Any]) -> list[Any]:
    """Run ``while_holding`` in a transaction, start every racer, wait until all of them are
    blocked behind that transaction, commit it, and return what each racer returned (or
    raised)."""
    results: list[Any] = [None] * len(racers)

    def run(n: int) -> None:
        try:
            results[n] = racers[n]()
        except BaseException as exc:  # the test looks at what was raised
            results[n] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(racers))]
    with transaction.atomic():
        while_holding()
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while _blocked_backends() < len(racers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _blocked_backends() == len(racers), f"the racers never met the lock: {results}"
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_requests_creating_one_address_at_once_get_the_one_contact():
    # The API's POST /api/contacts (and the CRM's forms) create a contact or find the one with
    # that address.  Two at once for one address both found nobody, both inserted, and the
    # loser's unique violation came out as a 500.
    _needs_postgresql()

    def create(email: str) -> Callable[[], Any]:
        values = {"email": email, "name": "Ada L", "company": "Acme"}
        return lambda: do_create_contact(values, purpose="newsletter")

    results = race(
        [create("ada@example.com"), create("ADA@Example.com")],
        while_holding=lambda: Contact.objects.create(email="Ada@example.com", name="Ada"),
    )
    assert [type(r) for r in results] == [tuple, tuple], results
    ada = Contact.objects.get()
    assert [r[0].pk for r in results] == [ada.pk, ada.pk]
    assert [r[1] for r in results] == [False, False]
    assert (ada.name, ada.company) == ("Ada", "Acme")  # blanks filled in, as for any existing one


def _pending_reader(news) -> Contact:
    ada, _ = do_create_contact({"email": "ada@example.com", "name": "Ada"}, purpose="newsletter")
    do_subscribe(ada, news, source="form", wording_text="Yes please", confirmed=False)
    return ada


@pytest.mark.parametrize("everything", [False, True], ids=["one list", "every list"])
def test_a_confirmation_and_an_unsubscribe_at_once_both_succeed_and_the_ledger_agrees(everything):
    # The person presses "confirm" in one tab while their mail client posts the one-click
    # unsubscribe.  The confirmation locked the contact and waited for the subscription; the
    # unsubscribe held the subscription and, committing, needed the contact (PostgreSQL checks
    # the consent event's foreign key then): a deadlock, and a 500 for one of them.
    _needs_postgresql()
    news = MailingList.objects.create(name="Product news", topic="product news")
    ada = _pending_reader(news)
    link = UnsubscribeRequest(contact_id=ada.pk, list_id=None if everything else news.pk)

    results = race(
        [lambda: do_confirm_signup(ConfirmRequest(contact_id=ada.pk, list_ids=(news.pk,)))],
        while_holding=lambda: do_unsubscribe_request(link, source="unsubscribe"),
    )
    assert not isinstance(results[0], BaseException), results
    # The confirmation came last: subscribed again, and the ledger's last word is that grant.
    status = Subscription.objects.get(contact=ada, mailing_list=news).status
    last = ada.consent_events.filter(mailing_list=news).order_by("at", "pk").last()
    assert (status, last.action, last.source) == ("confirmed", "granted", "confirmation")
