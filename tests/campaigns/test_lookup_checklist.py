""" "Why didn't they get it?" (every message to an address in 90 days, the server's answer in plain
words, looked up by the keyed hash, audited, never in a URL) and the bulk-sender checklist (green
or red from real data)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender, subscriber
from tests.operators import make_operator
from tidings.audience.actions import do_unsubscribe
from tidings.audience.emails import email_hmac
from tidings.audience.suppression import do_suppress
from tidings.campaigns.deliverability.checklist import (
    GREEN,
    RED,
    bulk_sender_checklist,
    complaint_item,
    honoured_item,
)
from tidings.campaigns.deliverability.lookup import explain_answer
from tidings.campaigns.events import NewEvent, record_events
from tidings.campaigns.models import Delivery, InboundReport, OutgoingMessage
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db

ADDRESS = "wilhelmina.quartermaine@example.net"


# --- plain words --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "answer", "words"),
    [
        (550, "user_unknown: 550 5.1.1 No such user <address>", "The address does not exist"),
        (552, "rejected: 552 5.2.2 Mailbox full", "The mailbox is full"),
        (452, "temporary: 452 4.2.2 Over quota", "The mailbox is full"),
        (554, "rejected: 554 5.7.1 Message rejected as spam", "Blocked as spam"),
        (
            550,
            "rejected: 550 5.7.26 Unauthenticated email is not accepted",
            "failed authentication",
        ),
        (454, "throttled: 454 4.7.0 Throttling failure: too many messages", "slow down"),
        (421, "throttled: 421 4.7.28 Our system has detected an unusual rate", "slow down"),
        (
            None,
            "server_unreachable: default (SMTP mail.example:587): refused",
            "could not be reached",
        ),
        (450, "temporary: 450 4.3.2 Please hold", "slow down"),
        (451, "temporary: 451 4.3.0 Local error", "slow down"),
        (550, "rejected: 550 Administrative prohibition", "Refused for good"),
    ],
)
def test_the_servers_answer_in_plain_words(code, answer, words):
    assert words in explain_answer(code, answer)


# --- the look-up --------------------------------------------------------------------------------
@pytest.fixture
def history():
    news = make_list()
    person = subscriber("Wilhelmina Quartermaine", news, email=ADDRESS)
    now = timezone.now()
    rows = {}
    for name, status, error, code, attempts in [
        ("Delivered", "sent", "", None, 1),
        ("No such user", "failed", "user_unknown: 550 5.1.1 No such user <address>", 550, 1),
        ("Throttled", "queued", "throttled: 454 4.7.0 Throttling", 454, 2),
        ("Spam", "failed", "rejected: 554 5.7.1 Message rejected as spam", 554, 1),
    ]:
        campaign = make_campaign(news, sender=make_sender_once(), name=name, started_at=now)
        rows[name] = Delivery.objects.create(
            campaign=campaign,
            contact=person,
            status=status,
            error=error,
            error_code=code,
            attempts=attempts,
            sent_at=now if status == "sent" else None,
            next_attempt_at=now + timedelta(minutes=5) if status == "queued" else None,
        )
    old = make_campaign(
        news, sender=make_sender_once(), name="Long ago", started_at=now - timedelta(days=120)
    )
    Delivery.objects.create(campaign=old, contact=person, status="sent", sent_at=old.started_at)
    record_events([NewEvent(rows["Delivered"].pk, "open", now + timedelta(minutes=3))])
    InboundReport.objects.create(
        source="imap",
        status="processed",
        kind="bounce_soft",
        detail="4.2.2",
        delivery=rows["Delivered"],
        recipient_hmac=email_hmac(ADDRESS),
    )
    OutgoingMessage.objects.create(
        kind="system:confirmation",
        contact=person,
        from_email="news@example.co.uk",
        subject="Please confirm",
        status="sent",
        sent_at=now - timedelta(days=3),
        attempts=1,
    )
    return person


def make_sender_once():
    from tidings.campaigns.models import Sender

    return Sender.objects.first() or make_sender()


def test_every_message_of_90_days_with_its_outcome_in_plain_words(history, owner_client):
    response = owner_client.post(reverse("campaigns:lookup"), {"address": ADDRESS.upper()})
    assert response.status_code == 200  # answered in place: no redirect, no address in a URL
    result = response.context["result"]
    by_name = {m.what: m for m in result.messages}
    assert set(by_name) == {
        "Campaign: Delivered",
        "Campaign: No such user",
        "Campaign: Throttled",
        "Campaign: Spam",
        "Message: system:confirmation",
    }  # not the campaign of 120 days ago
    assert by_name["Campaign: Delivered"].outcome == "Delivered"
    assert by_name["Campaign: Delivered"].afterwards == [
        "opened it",
        "bounced afterwards: The mailbox is full: the receiving server could not store any more "
        "mail. (4.2.2)",
    ]
    assert "does not exist" in by_name["Campaign: No such user"].explanation
    assert by_name["Campaign: Throttled"].outcome == "Trying again"
    assert "slow down" in by_name["Campaign: Throttled"].explanation
    assert "Blocked as spam" in by_name["Campaign: Spam"].explanation
    page = response.content.decode()
    assert "The address does not exist" in page and "554 5.7.1 Message rejected as spam" in page


def test_a_lookup_is_audited_by_the_keyed_hash_never_the_address(history, owner_client):
    owner_client.post(reverse("campaigns:lookup"), {"address": ADDRESS})
    entry = AuditEntry.objects.get(action="delivery.looked_up")
    assert entry.details == {"email_hmac": email_hmac(ADDRESS), "messages": 5}
    assert ADDRESS not in str(entry.details) and "wilhelmina" not in str(entry.details)


def test_a_suppressed_address_says_so_even_without_a_contact(owner_client):
    do_suppress(ADDRESS, reason="complaint", actor=None)
    response = owner_client.post(reverse("campaigns:lookup"), {"address": ADDRESS})
    page = response.content.decode()
    assert "No contact has this address" in page
    assert "on the suppression list (complaint)" in page


def test_a_bad_address_is_a_form_error(owner_client):
    response = owner_client.post(reverse("campaigns:lookup"), {"address": "not-an-address"})
    assert "Not an email address" in str(response.context["form"].errors["address"])
    assert not AuditEntry.objects.filter(action="delivery.looked_up").exists()


def test_only_operators_with_the_people_permission_look_up():
    analyst = Client()
    analyst.force_login(make_operator("ann", "analyst"))
    assert analyst.post(reverse("campaigns:lookup"), {"address": ADDRESS}).status_code == 403
    editor = Client()
    editor.force_login(make_operator("eve", "editor"))
    assert editor.post(reverse("campaigns:lookup"), {"address": ADDRESS}).status_code == 200


# --- the bulk-sender checklist ------------------------------------------------------------------
def sent_to(news, person, at):
    campaign = make_campaign(news, sender=make_sender_once(), started_at=at)
    return Delivery.objects.create(campaign=campaign, contact=person, status="sent", sent_at=at)


def test_unsubscribes_honoured_is_measured_from_the_ledger():
    news = make_list()
    person = subscriber("Ann Left", news)
    do_unsubscribe(person, news, source="unsubscribe")
    since = timezone.now() - timedelta(days=30)
    assert honoured_item(since).status == GREEN
    sent_to(news, person, timezone.now() + timedelta(hours=1))
    item = honoured_item(since)
    assert item.status == GREEN and "At most 1.0 hours" in item.summary
    sent_to(news, person, timezone.now() + timedelta(days=3))
    item = honoured_item(since)
    assert item.status == RED and "At most 72.0 hours" in item.summary


def test_the_complaint_rate_is_judged_overall_and_per_mailbox_provider():
    news = make_list()
    now = timezone.now()
    gmail = [subscriber(f"G {n}", news, email=f"g{n}@gmail.com") for n in range(200)]
    others = [subscriber(f"O {n}", news, email=f"o{n}@example.org") for n in range(800)]
    rows = [sent_to(news, p, now) for p in gmail[:1] + others[:1]]
    campaign = rows[0].campaign
    Delivery.objects.bulk_create(
        [
            Delivery(campaign=campaign, contact=p, status="sent", sent_at=now)
            for p in gmail[1:] + others[1:]
        ]
    )
    record_events([NewEvent(rows[0].pk, "complaint", now)])  # one Gmail user of 200: 0.5%
    item = complaint_item(now - timedelta(days=30))
    figures = {label: (figure, status) for label, figure, status in item.rows}
    assert figures["Gmail"] == ("0.50% (1 of 200)", RED)
    assert figures["All receivers"] == ("0.10% (1 of 1000)", "amber")
    assert figures["Yahoo"] == ("nothing sent", GREEN)
    assert item.status == RED


def test_one_click_is_red_over_http(settings):
    settings.TIDINGS_BASE_URL = "http://news.example.co.uk"
    assert next(i for i in bulk_sender_checklist().items if i.key == "one_click").status == RED
    settings.TIDINGS_BASE_URL = "https://news.example.co.uk"
    assert next(i for i in bulk_sender_checklist().items if i.key == "one_click").status == GREEN


def test_one_click_on_a_new_installation_speaks_of_messages_to_come(settings):
    """Before the first campaign the red item said "0 campaign messages carried
    List-Unsubscribe …, but their link starts with http://" (and the green one "All 0")."""

    def one_click():
        return next(i for i in bulk_sender_checklist().items if i.key == "one_click").summary

    settings.TIDINGS_BASE_URL = "http://news.example.co.uk"
    assert one_click() == (
        "Unsubscribe links will start with http://: Gmail and Yahoo offer one-click "
        "unsubscribe only for https links."
    )
    settings.TIDINGS_BASE_URL = "https://news.example.co.uk"
    assert one_click().startswith("Every campaign message will carry an https")


def test_authentication_is_red_when_a_senders_checks_fail_and_the_dashboard_says_so(owner_client):
    sender = make_sender()
    sender.health_status = "fail"
    sender.health = {
        "checks": [{"label": "DMARC", "required": True, "status": "fail"}],
        "sending_ips": [],
    }
    sender.save()
    item = bulk_sender_checklist().items[0]
    assert item.status == RED and item.rows == [("example.co.uk", "fails: DMARC", RED)]
    page = owner_client.get(reverse("web:dashboard")).content.decode()
    assert "Bulk-sender checklist (Gmail, Yahoo, Microsoft)" in page
    assert "fails: DMARC" in page
