"""A campaign pauses itself when its complaint rate passes 0.3% (after 1,000 deliveries) or its
hard-bounce rate passes 5%, with the reason on its page, and its author and the owners are
emailed.  The limits are settings."""

from __future__ import annotations

import itertools

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.lifecycle_helpers import make_campaign, make_list, make_sender
from tidings.audience.models import Contact, Subscription, Suppression
from tidings.campaigns import lifecycle
from tidings.campaigns.config import DeliveryConfig
from tidings.campaigns.engine import Engine
from tidings.campaigns.events import NewEvent, record_events
from tidings.campaigns.models import Campaign, Delivery, Sender
from tidings.campaigns.protection import PREFIX, notify_paused_task, protection_reason
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


_lists = itertools.count(1)


def sent_campaign(sent: int, queued: int = 0, **fields) -> Campaign:
    n = next(_lists)
    news = make_list(f"News {n}")
    sender = Sender.objects.first() or make_sender()
    campaign = make_campaign(news, sender=sender, with_template=True, status="sending", **fields)
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"R {i}", email=f"r{i}.{n}@example.org") for i in range(sent + queued)]
    )
    Subscription.objects.bulk_create(
        [Subscription(contact=c, mailing_list=news, status="confirmed") for c in contacts]
    )
    now = timezone.now()
    Delivery.objects.bulk_create(
        [
            Delivery(
                campaign=campaign,
                contact=c,
                status="sent" if n < sent else "queued",
                sent_at=now if n < sent else None,
            )
            for n, c in enumerate(contacts)
        ]
    )
    return campaign


def complain(campaign: Campaign, people: int) -> None:
    rows = Delivery.objects.filter(campaign=campaign, status="sent").order_by("pk")[:people]
    record_events([NewEvent(d.pk, "complaint", timezone.now()) for d in rows])


def test_complaints_above_the_limit_pause_only_after_enough_deliveries():
    config = DeliveryConfig()
    small = sent_campaign(999)
    complain(small, 10)  # 1% — but fewer than 1,000 delivered: too few to judge
    assert protection_reason(small.pk, config) is None
    big = sent_campaign(1000)
    complain(big, 3)  # exactly 0.3%: not above
    assert protection_reason(big.pk, config) is None
    complain(big, 4)
    reason = protection_reason(big.pk, config)
    assert reason.startswith(
        "Paused automatically to protect your sending reputation: 4 of 1000 recipients (0.40%)"
    )


def test_hard_bounces_count_refusals_while_sending_and_reports_after():
    config = DeliveryConfig()
    campaign = sent_campaign(95)
    failed = Contact.objects.bulk_create(
        [Contact(name=f"F {n}", email=f"f{n}@example.org") for n in range(5)]
    )
    Delivery.objects.bulk_create(
        [Delivery(campaign=campaign, contact=c, status="failed", error_code=550) for c in failed]
    )
    assert protection_reason(campaign.pk, config) is None  # 5 of 100: not above 5%
    row = Delivery.objects.filter(campaign=campaign, status="sent").first()
    record_events([NewEvent(row.pk, "bounce_hard", timezone.now())])
    assert "6 of 100 messages (6.0%) bounced hard" in protection_reason(campaign.pk, config)


def test_the_limits_are_settings(settings):
    campaign = sent_campaign(200)
    complain(campaign, 1)
    settings.TIDINGS_COMPLAINT_PAUSE_MIN = 100
    settings.TIDINGS_COMPLAINT_PAUSE_RATE = 0.004
    assert "1 of 200" in protection_reason(campaign.pk, DeliveryConfig.from_settings())
    settings.TIDINGS_COMPLAINT_PAUSE_RATE = 0.01
    assert protection_reason(campaign.pk, DeliveryConfig.from_settings()) is None
    settings.TIDINGS_BOUNCE_PAUSE_RATE = 1.5
    assert ("TIDINGS_BOUNCE_PAUSE_RATE", "must be a fraction above 0, at most 1") in (
        DeliveryConfig.from_settings().problems()
    )


def test_the_engine_pauses_the_campaign_and_the_owners_are_emailed(owner, settings, mailoutbox):
    campaign = sent_campaign(1000, queued=50)
    Campaign.objects.filter(pk=campaign.pk).update(created_by=owner)
    complain(campaign, 5)
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        Engine().run(until_idle=True, max_seconds=10)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "reported it as spam, above the 0.3% limit" in campaign.paused_reason
    assert sink.received == []  # checked as the engine started: nothing more went out
    assert Delivery.objects.filter(campaign=campaign, status="queued").count() == 50
    assert AuditEntry.objects.filter(action="campaign.paused", object_id=str(campaign.pk)).exists()
    task = DBTaskResult.objects.get(task_path__endswith="notify_paused_task")
    assert task.args_kwargs["args"][0] == campaign.pk
    assert notify_paused_task.call(campaign.pk, campaign.paused_reason) == 1
    assert mailoutbox[0].to == ["owner@example.co.uk"]
    assert "paused itself" in mailoutbox[0].subject
    # An operator looks, and resumes: the protection is waived, and the rest go out.
    lifecycle.do_resume(campaign, actor=owner)
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        Engine().run(until_idle=True, max_seconds=10)
    campaign.refresh_from_db()
    assert campaign.status == "finished" and len(sink.received) == 50
    resumed = AuditEntry.objects.get(action="campaign.resumed", object_id=str(campaign.pk))
    assert resumed.details == {"protection_waived": True}


def test_hard_bounces_pause_a_campaign_within_seconds_not_after_it_is_over(settings):
    """The rates were checked every 10 s: a list with a quarter of dead addresses went out in
    full between two checks (the demo's 210 in 2 s, 24% refused), and nothing paused."""
    campaign = sent_campaign(0, queued=1500)
    dead = list(
        Delivery.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("contact__email", flat=True)
    )[::4]
    settings.TIDINGS_DELIVERY_WINDOW = 40
    with SmtpSink() as sink:
        for address in dead:
            sink.answers[address] = ["550 5.1.1 No such user"]
        settings.TIDINGS_TRANSPORTS = transports_for(sink, rate="100/s")
        Engine().run(until_idle=True, max_seconds=25)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "bounced hard, above the 5% limit" in campaign.paused_reason
    handed = Delivery.objects.filter(campaign=campaign, status__in=("sent", "failed")).count()
    assert handed < 500, handed  # checked about a second after the first refusal


def refuse(campaign: Campaign, errors: list[tuple[int | None, str]]) -> None:
    n = next(_lists)
    contacts = Contact.objects.bulk_create(
        [Contact(name=f"B {i}", email=f"b{i}.{n}@example.org") for i in range(len(errors))]
    )
    Delivery.objects.bulk_create(
        [
            Delivery(campaign=campaign, contact=c, status="failed", error_code=code, error=error)
            for c, (code, error) in zip(contacts, errors, strict=True)
        ]
    )


def test_policy_refusals_are_no_hard_bounces_and_pause_with_what_to_check():
    """A content, authentication or reputation refusal (5.7.x) says nothing about the address:
    it paused the campaign as a hard bounce, "check the list's source"."""
    config = DeliveryConfig()
    campaign = sent_campaign(90)
    refuse(campaign, [(554, "blocked: 554 5.7.1 Message rejected as spam")] * 4)
    refuse(campaign, [(550, "user_unknown: 550 5.1.1 No such user")] * 5)
    # A policy block reported afterwards (a DSN, an ESP event): the row had been sent.
    refuse(campaign, [(None, "blocked: 5.7.26 (reported after it was handed over)")])
    # 5 hard of 100 and 5 blocked of 100: neither above 5%, and they are not added up.
    assert protection_reason(campaign.pk, config) is None
    refuse(campaign, [(550, "blocked: 550 5.7.26 Unauthenticated email is not accepted")])
    reason = protection_reason(campaign.pk, config)
    assert reason.startswith(f"{PREFIX}6 of 101 messages (5.9%) were refused by the receiving")
    assert "not the addresses" in reason and "DKIM" in reason and "blocklist" in reason
    assert "bounced hard" not in reason and "list's source" not in reason


def test_refusals_of_our_sender_are_no_hard_bounces_and_pause_saying_to_fix_the_sender():
    """5.1.7 / 5.1.8 refuse our envelope sender: they counted as the list's hard bounces
    ("check the list's source").  Counted apart now, and the reason says what to fix."""
    config = DeliveryConfig()
    campaign = sent_campaign(90)
    refuse(campaign, [(550, "user_unknown: 550 5.1.1 No such user")] * 5)
    refuse(campaign, [(553, "sender: 553 5.1.8 Sender address rejected: Domain not found")] * 4)
    refuse(campaign, [(None, "sender: 5.1.7 (reported after it was handed over)")])
    assert protection_reason(campaign.pk, config) is None  # 5 and 5 of 100: not added up
    refuse(campaign, [(550, "sender: 550 Sender verify failed")])
    reason = protection_reason(campaign.pk, config)
    assert reason.startswith(f"{PREFIX}6 of 101 messages (5.9%) were refused because of our")
    assert "envelope sender" in reason and "MX" in reason and "SPF" in reason
    assert "nobody was suppressed" in reason
    assert "bounced hard" not in reason and "list's source" not in reason


def test_a_misconfigured_sender_domain_pauses_the_campaign_and_suppresses_nobody(owner, settings):
    """Through a real SMTP server: the servers of a quarter of the recipients check our
    envelope sender's domain and refuse it (Postfix's reject_unknown_sender_domain, at RCPT).
    The campaign pauses saying to fix the sender; nobody is suppressed or marked bounced."""
    campaign = sent_campaign(0, queued=400)
    refused = list(
        Delivery.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("contact__email", flat=True)
    )[::4]
    settings.TIDINGS_DELIVERY_WINDOW = 40
    with SmtpSink() as sink:
        for address in refused:
            sink.answers[address] = [
                "550 5.1.8 <bounces@example.co.uk>: Sender address rejected: Domain not found"
            ]
        settings.TIDINGS_TRANSPORTS = transports_for(sink, rate="100/s")
        Engine().run(until_idle=True, max_seconds=25)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "because of our envelope sender" in campaign.paused_reason
    assert not Suppression.objects.exists()
    assert not Subscription.objects.filter(status="bounced").exists()


def test_a_server_refusing_the_content_pauses_the_campaign_and_suppresses_nobody(
    owner, settings, mailoutbox
):
    """Through a real SMTP server: a quarter of the recipients' server refuses the message as
    spam.  The campaign pauses saying so; nobody is suppressed or marked bounced."""
    campaign = sent_campaign(0, queued=400)
    Campaign.objects.filter(pk=campaign.pk).update(created_by=owner)
    refused = list(
        Delivery.objects.filter(campaign=campaign)
        .order_by("pk")
        .values_list("contact__email", flat=True)
    )[::4]
    settings.TIDINGS_DELIVERY_WINDOW = 40
    with SmtpSink() as sink:
        for address in refused:
            sink.answers[address] = ["554 5.7.1 Message rejected as spam"]
        settings.TIDINGS_TRANSPORTS = transports_for(sink, rate="100/s")
        Engine().run(until_idle=True, max_seconds=25)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert "refused by the receiving servers' policy" in campaign.paused_reason
    assert "list's source" not in campaign.paused_reason
    assert not Suppression.objects.exists()
    assert not Subscription.objects.filter(status="bounced").exists()
    assert notify_paused_task.call(campaign.pk, campaign.paused_reason) == 1
    assert "where these addresses came from" not in mailoutbox[0].body
    assert "DKIM" in mailoutbox[0].body


def test_policy_blocks_reported_afterwards_count_towards_the_policy_pause():
    """Gmail's reports that it refused a sent message as spam (a DSN with 5.7.1): the rows had
    been counted as delivered, and once failed they were counted nowhere."""
    from tests.campaigns.bounce_helpers import sample
    from tidings.campaigns.bounces.processing import do_record_inbound_mail

    campaign = sent_campaign(100)
    rows = Delivery.objects.filter(campaign=campaign).select_related("contact").order_by("pk")
    for row in rows[:6]:
        raw = sample("gmail_policy_block.eml", recipient=row.contact.email, row=("d", row.pk))
        assert do_record_inbound_mail(raw, source="test").kind == "blocked"
    reason = protection_reason(campaign.pk, DeliveryConfig())
    assert reason.startswith(f"{PREFIX}6 of 100 messages (6.0%) were refused by the receiving")
    assert not Suppression.objects.exists()
