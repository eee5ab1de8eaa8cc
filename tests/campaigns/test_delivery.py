"""The delivery engine: the queue, claims and leases, results, retries, failures, the circuit
breaker, pausing, finishing, and one-off messages ahead of campaigns.

A real SMTP server (aiosmtpd, on loopback) receives everything; ``deliver_pending`` runs one pass
of the engine in the test's thread, as ``tidings worker`` does continuously.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from tests.campaigns.delivery_helpers import (
    SmtpSink,
    fast_retries,
    free_port,
    make_list,
    sending_campaign,
    subscribers,
    transports_for,
)
from tidings.audience.actions import do_unsubscribe, do_unsubscribe_all
from tidings.audience.emails import email_hmac
from tidings.audience.models import Contact, Subscription, Suppression
from tidings.campaigns import lifecycle
from tidings.campaigns.engine import Engine, deliver_pending
from tidings.campaigns.lifecycle import finish_if_done
from tidings.campaigns.mail import send_system_email
from tidings.campaigns.models import Campaign, Delivery, DeliveryWorker, OutgoingMessage
from tidings.campaigns.queue import (
    Result,
    claim_batch,
    delivery_counts,
    populate_deliveries,
    record_results,
    recover_abandoned,
    retry_delay,
    retry_failed,
)
from tidings.campaigns.targeting import audience_for
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def sink(settings):
    with SmtpSink() as server:
        settings.TIDINGS_TRANSPORTS = transports_for(server)
        yield server


@pytest.fixture
def news():
    return make_list()


def statuses(campaign: Campaign) -> dict[str, int]:
    return {k: v for k, v in delivery_counts(campaign).items() if v}


def deliver_until_done(campaign: Campaign, seconds: float = 20) -> None:
    """Passes of the engine until no row of the campaign is waiting (retries included)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        deliver_pending(max_seconds=5)
        if not Delivery.objects.filter(campaign=campaign, status__in=("queued", "sending")):
            return
        time.sleep(0.05)
    waiting = list(
        Delivery.objects.filter(campaign=campaign, status__in=("queued", "sending")).values(
            "status", "attempts", "error", "next_attempt_at"
        )
    )
    raise AssertionError(f"still waiting: {statuses(campaign)} {waiting}")


# --- the queue ---------------------------------------------------------------------------------
def test_populating_queues_each_contact_once_however_often_it_is_called(news):
    people = subscribers(news, 5)
    campaign = sending_campaign(news)  # populated once already
    assert populate_deliveries(campaign, audience_for(campaign)) == 0
    assert populate_deliveries(campaign, Contact.objects.all(), batch=2) == 0
    assert Delivery.objects.filter(campaign=campaign).count() == 5
    assert set(Delivery.objects.values_list("contact_id", flat=True)) == {p.pk for p in people}


def test_populating_in_batches_inserts_every_contact_of_the_queryset(news):
    people = subscribers(news, 7)
    campaign = sending_campaign(make_list("Other"))
    inserted = populate_deliveries(
        campaign, Contact.objects.filter(pk__in=[p.pk for p in people]), batch=3
    )
    assert inserted == 7
    assert statuses(campaign) == {"queued": 7}


def test_a_claim_leases_rows_to_one_worker_and_the_next_claim_gets_others(news):
    subscribers(news, 6)
    campaign = sending_campaign(news)
    first = claim_batch("worker-a", 4)
    second = claim_batch("worker-b", 4)
    assert len(first) == 4 and len(second) == 2
    assert not {r.id for r in first} & {r.id for r in second}
    leased = Delivery.objects.filter(campaign=campaign, leased_by="worker-a")
    assert leased.count() == 4 and all(d.status == "sending" for d in leased)
    assert all(d.leased_until > timezone.now() + timedelta(seconds=20) for d in leased)
    assert claim_batch("worker-c", 4) == []


def test_results_for_rows_another_worker_took_back_are_not_recorded(news):
    subscribers(news, 2)
    campaign = sending_campaign(news)
    rows = claim_batch("worker-a", 2)
    recover = Delivery.objects.filter(pk=rows[0].id).update(status="queued", leased_by="")
    assert recover == 1
    changed = record_results("worker-a", [Result(r, "sent") for r in rows])
    assert changed == 1
    assert statuses(campaign) == {"queued": 1, "sent": 1}


# --- sending ---------------------------------------------------------------------------------
def test_every_subscriber_gets_the_campaign_once_and_then_it_is_finished(sink, news):
    people = subscribers(news, 12)
    campaign = sending_campaign(news)
    stats = deliver_pending()
    assert stats.sent == 12
    assert sorted(r.recipient for r in sink.received) == sorted(p.email for p in people)
    assert statuses(campaign) == {"sent": 12}
    assert set(Delivery.objects.values_list("attempts", "leased_by")) == {(1, "")}
    campaign.refresh_from_db()
    assert campaign.status == "finished" and campaign.finished_at is not None
    assert AuditEntry.objects.get(action="campaign.finished").details == {
        "sent": 12,
        "failed": 0,
        "skipped": 0,
    }


def test_a_campaign_waiting_for_a_retry_is_not_finished(sink, news, settings):
    settings.TIDINGS_RETRY_BASE_SECONDS = 3600
    _, grace = subscribers(news, 2)
    sink.answers[grace.email] = ["451 4.3.0 Please try again later"]
    campaign = sending_campaign(news)
    deliver_pending()
    assert statuses(campaign) == {"sent": 1, "queued": 1}
    assert not finish_if_done(campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    waiting = Delivery.objects.get(contact=grace)
    assert waiting.next_attempt_at > timezone.now() + timedelta(minutes=20)
    Delivery.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())
    deliver_pending()
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_temporary_failures_and_throttling_are_retried_until_the_message_goes(sink, news, settings):
    fast_retries(settings)
    (ada,) = subscribers(news, 1)
    sink.answers[ada.email] = [
        "451 4.3.0 Mail server temporarily rejected message",
        "454 4.7.0 Throttling failure: Maximum sending rate exceeded",
    ]
    campaign = sending_campaign(news)
    deliver_until_done(campaign)
    row = Delivery.objects.get(contact=ada)
    assert (row.status, row.attempts, row.error) == ("sent", 3, "")
    assert len(sink.to(ada.email)) == 1


def test_retries_wait_longer_each_time_with_jitter(settings):
    settings.TIDINGS_RETRY_BASE_SECONDS = 60
    for attempts, expected in ((1, 60), (2, 120), (3, 240), (10, 3600)):
        delays = {retry_delay(attempts).total_seconds() for _ in range(20)}
        assert all(expected * 0.5 <= d <= expected * 1.5 for d in delays)
        assert len(delays) > 1  # jitter: not all at the same moment


def test_a_message_that_keeps_failing_temporarily_fails_after_the_last_attempt(
    sink, news, settings
):
    fast_retries(settings)
    settings.TIDINGS_DELIVERY_MAX_ATTEMPTS = 3
    (ada,) = subscribers(news, 1)
    sink.answers[ada.email] = ["452 4.2.2 Mailbox full"] * 5
    campaign = sending_campaign(news)
    deliver_until_done(campaign)
    row = Delivery.objects.get(contact=ada)
    assert (row.status, row.attempts, row.error_code) == ("failed", 3, 452)
    assert row.error.startswith("temporary: 452")
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_a_permanent_refusal_fails_the_message_at_once_without_suppressing_it(sink, news):
    (ada,) = subscribers(news, 1)
    sink.answers[ada.email] = ["554 5.7.1 Message rejected as spam"]
    campaign = sending_campaign(news)
    deliver_pending()
    row = Delivery.objects.get(contact=ada)
    assert (row.status, row.attempts, row.error_code) == ("failed", 1, 554)
    assert row.error == "blocked: 554 5.7.1 Message rejected as spam"
    assert not Suppression.objects.exists()
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_policy_blocks_at_send_time_fail_the_message_and_never_count_against_the_person(
    sink, news, settings
):
    """A real SMTP server refusing three campaigns to the same person with 5.7.x (as spam, a
    blocklisted server, DMARC), as many as the soft-bounce limit: each message fails with its
    reply code; the person is neither suppressed nor counted as bouncing."""
    from tidings.campaigns.models import InboundReport

    settings.TIDINGS_SOFT_BOUNCE_LIMIT = 3
    (ada,) = subscribers(news, 1)
    replies = [
        "550 5.7.1 Message rejected as spam",
        "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
        "550 5.7.26 Unauthenticated email is not accepted due to DMARC policy",
    ]
    for reply in replies:
        sink.answers[ada.email] = [reply]
        campaign = sending_campaign(news)
        deliver_pending()
        row = Delivery.objects.get(campaign=campaign, contact=ada)
        assert (row.status, row.error_code) == ("failed", int(reply[:3]))
        assert row.error == f"blocked: {reply}"
    assert not Suppression.objects.exists()
    assert Subscription.objects.get(contact=ada).status == "confirmed"
    assert not InboundReport.objects.exists()
    assert not ada.deliveries.filter(events__kind__startswith="bounce").exists()


def test_an_unknown_mailbox_is_a_hard_bounce_that_suppresses_the_address(sink, news):
    ada, grace = subscribers(news, 2)
    sink.answers[ada.email] = [f"550 5.1.1 <{ada.email}>: Recipient address rejected"]
    sending_campaign(news)
    deliver_pending()
    row = Delivery.objects.get(contact=ada)
    assert (row.status, row.error_code) == ("failed", 550)
    assert ada.email not in row.error and "<address>" in row.error  # never personal data
    assert Suppression.objects.get(email_hmac=email_hmac(ada.email)).reason == "hard_bounce"
    assert Subscription.objects.get(contact=ada).status == "bounced"
    assert Subscription.objects.get(contact=grace).status == "confirmed"
    assert AuditEntry.objects.filter(action="subscription.bounced").count() == 1


def test_retry_failed_queues_the_failed_messages_again_and_they_go_out(sink, news):
    ada, _ = subscribers(news, 2)
    sink.answers[ada.email] = ["554 5.7.1 Blocked for now"]
    campaign = sending_campaign(news)
    deliver_pending()
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"
    assert retry_failed(campaign) == 1
    row = Delivery.objects.get(contact=ada)
    assert (row.status, row.attempts, row.error) == ("queued", 0, "")
    lifecycle.apply_transition(campaign, "retry", finished_at=None)
    deliver_pending()
    assert statuses(campaign) == {"sent": 2}
    assert len(sink.to(ada.email)) == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


# --- who may still be emailed ------------------------------------------------------------------
def test_people_who_unsubscribed_after_the_campaign_started_are_skipped(sink, news):
    ada, grace, alan = subscribers(news, 3)
    campaign = sending_campaign(news)
    do_unsubscribe(grace, news, source="unsubscribe")
    do_unsubscribe_all(alan, source="unsubscribe")
    deliver_pending()
    assert [r.recipient for r in sink.received] == [ada.email]
    rows = dict(Delivery.objects.values_list("contact_id", "status"))
    assert rows == {ada.pk: "sent", grace.pk: "skipped", alan.pk: "skipped"}
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_an_unsubscribe_in_the_middle_of_sending_stops_the_rest(sink, news, settings):
    settings.TIDINGS_TRANSPORTS = transports_for(sink, rate="40/s", concurrency=2)
    settings.TIDINGS_DELIVERY_WINDOW = 6
    people = subscribers(news, 30)
    campaign = sending_campaign(news)
    deliver_pending(max_seconds=0.3)  # part of the campaign goes out, then the worker stops
    waiting = list(
        Contact.objects.filter(deliveries__campaign=campaign, deliveries__status="queued")
    )
    assert 5 < len(waiting) < 30
    leaving = waiting[:3]
    for person in leaving:
        do_unsubscribe(person, news, source="unsubscribe")
    deliver_until_done(campaign)
    got = {r.recipient for r in sink.received}
    assert got == {p.email for p in people} - {p.email for p in leaving}
    assert statuses(campaign) == {"sent": 27, "skipped": 3}


def test_an_unsubscribe_stops_messages_already_claimed_and_waiting_for_a_slow_server(
    sink, news, settings, monkeypatch
):
    """A slow server keeps claimed messages waiting in the worker; people who unsubscribe
    meanwhile are not sent the campaign once their unsubscribe has committed."""
    settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
    settings.TIDINGS_DELIVERY_WINDOW = 10
    fast_retries(settings)  # the stalled message may time out and be sent again
    people = subscribers(news, 30)
    campaign = sending_campaign(news)
    sink.hold_after = 5  # after the fifth message the server answers nothing: "very slow"
    leaving: list[Contact] = []
    ticks: list[int] = []
    read_deferrals = Engine._read_deferrals

    def unsubscribe_while_sending(engine):
        # Once five messages are in and the server stalls, the people whose rows the worker
        # holds but whose message has not reached the server (no RCPT yet) unsubscribe.  This
        # runs in the worker's database thread (the test's), between two of its loop's steps.
        if leaving:  # two ticks (seconds) later the server answers again: by then every
            ticks.append(1)  # held row was checked a while ago, so asked again
            if len(ticks) >= 2:
                sink.hold_after = None
        elif len(sink.received) >= 5:
            leaving.extend(
                contact
                for contact in Contact.objects.filter(
                    deliveries__campaign=campaign, deliveries__status="sending"
                )
                if not sink.attempts.get(contact.email)
            )
            for person in leaving:
                do_unsubscribe(person, news, source="unsubscribe")
        read_deferrals(engine)

    monkeypatch.setattr(Engine, "_read_deferrals", unsubscribe_while_sending)
    deliver_pending(max_seconds=60)  # one worker's run: not stopped and started again
    assert len(leaving) >= 3  # the worker had claimed them ahead of the stalled server
    got = {r.recipient for r in sink.received}
    assert got == {p.email for p in people} - {p.email for p in leaving}
    assert statuses(campaign) == {"sent": 30 - len(leaving), "skipped": len(leaving)}
    reasons = set(Delivery.objects.filter(contact__in=leaving).values_list("error", flat=True))
    assert reasons == {"no consent at send time (unsubscribed)"}


def test_the_send_time_re_check_does_not_ask_about_rows_it_claimed_a_moment_ago(news):
    """Every second the worker asked again about every row it held, also those it had claimed
    (and checked) a moment before: at full speed nearly all of them, a query's worth of
    contacts and two of suppressions a second for nothing."""
    from django.test.utils import CaptureQueriesContext

    from tidings.campaigns.engine.context import CampaignContext

    ada, _ = subscribers(news, 2)
    campaign = sending_campaign(news)
    engine = Engine()
    context = CampaignContext(campaign, engine.config)
    engine.contexts = {campaign.pk: context}
    withdrawn: list[dict] = []
    engine.thread = type("Loop", (), {"soon": lambda self, call, arg: withdrawn.append(arg)})()
    engine.dispatcher = type("Dispatcher", (), {"withdraw": None})()
    engine._campaign_jobs(context, claim_batch("me", 2))  # checked as they are claimed

    with CaptureQueriesContext(connection) as just_claimed:
        engine._recheck()
    assert just_claimed.captured_queries == []

    do_unsubscribe(ada, news, source="unsubscribe")
    engine._recheck(time.monotonic() + 1.0)  # a second later they are asked again
    ada_row = Delivery.objects.get(contact=ada).pk
    assert withdrawn == [{ada_row: "no consent at send time (unsubscribed)"}]


def test_a_person_erased_while_their_message_waits_is_recorded_as_erased(
    sink, news, settings, monkeypatch
):
    """The re-check's reason for a person erased after their row was claimed read "no consent
    at send time (unsubscribed)": an operator reading the campaign's skipped rows was told they
    had unsubscribed, which they had not."""
    from tidings.rights.actions import do_erase_contact

    settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
    settings.TIDINGS_DELIVERY_WINDOW = 10
    fast_retries(settings)
    subscribers(news, 20)
    campaign = sending_campaign(news)
    sink.hold_after = 5
    erased: list[int] = []  # their delivery rows' ids (the rows lose their contact)
    ticks: list[int] = []
    read_deferrals = Engine._read_deferrals

    def erase_while_sending(engine):
        if erased:  # as above: answering again once every held row was asked again
            ticks.append(1)
            if len(ticks) >= 2:
                sink.hold_after = None
        elif len(sink.received) >= 5:
            waiting = Delivery.objects.filter(campaign=campaign, status="sending")
            for delivery in waiting.select_related("contact"):
                if not sink.attempts.get(delivery.contact.email):
                    erased.append(delivery.pk)
                    do_erase_contact(delivery.contact)
        read_deferrals(engine)

    monkeypatch.setattr(Engine, "_read_deferrals", erase_while_sending)
    deliver_pending(max_seconds=60)
    assert len(erased) >= 3
    rows = Delivery.objects.filter(pk__in=erased)
    assert set(rows.values_list("status", "error")) == {("skipped", "the contact was erased")}


def test_suppressed_addresses_and_domains_are_skipped_at_send_time(sink, news):
    from tidings.audience.models import SuppressedDomain

    ada, grace, alan = subscribers(news, 3)
    Contact.objects.filter(pk=alan.pk).update(email="alan@mail.bigcorp.example")
    sending_campaign(news)
    Suppression.objects.create(email_hmac=email_hmac(grace.email), reason="complaint")
    SuppressedDomain.objects.create(domain="bigcorp.example")
    deliver_pending()
    assert [r.recipient for r in sink.received] == [ada.email]
    assert Delivery.objects.get(contact=grace).error == "suppressed"
    assert Delivery.objects.get(contact=alan).status == "skipped"


def test_an_erased_contact_is_skipped(sink, news):
    _, grace = subscribers(news, 2)
    campaign = sending_campaign(news)
    Delivery.objects.filter(contact=grace).update(contact=None)  # what erasure leaves
    deliver_pending()
    assert statuses(campaign) == {"sent": 1, "skipped": 1}


# --- the circuit breaker and unreachable servers -------------------------------------------------
def test_the_circuit_breaker_pauses_a_campaign_most_of_whose_messages_fail(sink, news, settings):
    settings.TIDINGS_BREAKER_MIN = 10
    settings.TIDINGS_DELIVERY_WINDOW = 10
    settings.TIDINGS_DELIVERY_CHUNK = 5
    sink.refuse_all = "554 5.7.1 Service unavailable; client host blocked"
    subscribers(news, 60)
    campaign = sending_campaign(news)
    stats = deliver_pending()
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.paused_reason.startswith("Paused automatically: ")
    assert "554 5.7.1 Service unavailable; client host blocked" in campaign.paused_reason
    counts = statuses(campaign)
    assert counts["queued"] >= 40  # it stopped instead of burning through the list
    assert stats.paused == [campaign.pk]
    assert AuditEntry.objects.get(action="campaign.paused").actor_label == "worker"


def test_an_unreachable_server_pauses_the_campaign_with_the_reason_and_spends_no_attempt(
    news, settings
):
    port = free_port()  # nothing listens there
    settings.TIDINGS_TRANSPORTS = transports_for(f"smtp://127.0.0.1:{port}?tls=none")
    settings.TIDINGS_UNREACHABLE_PAUSE_SECONDS = 0.5
    subscribers(news, 20)
    campaign = sending_campaign(news)
    deliver_pending(max_seconds=15)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert f"server unreachable: default (SMTP 127.0.0.1:{port})" in campaign.paused_reason
    assert "connection refused" in campaign.paused_reason
    assert statuses(campaign) == {"queued": 20}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {0}


# --- pausing and cancelling while a worker sends --------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_pausing_or_cancelling_stops_a_sending_worker_within_a_second(
    sink, news, settings, owner, action
):
    settings.TIDINGS_TRANSPORTS = transports_for(sink, rate="50/s", concurrency=2)
    settings.TIDINGS_DELIVERY_WINDOW = 10
    subscribers(news, 150)
    campaign = sending_campaign(news)
    stop = threading.Event()
    # resilient: the test database (SQLite in memory, shared between threads) answers "table
    # locked" at once where a real database file waits; the worker then tries again, as in
    # production after a database error.
    engine = Engine(stop=stop, resilient=True)
    # Until idle: the worker returns by itself once it has nothing left to claim or send, which
    # (150 people at 50 a second) happens only when the pause or the cancel has stopped it.
    worker = threading.Thread(target=lambda: engine.run(until_idle=True) or connection.close())
    worker.start()
    try:
        assert sink.wait_for(20, timeout=120)  # a bound for a hang, not a speed
        _retry_while_locked(lambda: getattr(lifecycle, f"do_{action}")(campaign, actor=owner))
        worker.join(30)
        assert not worker.is_alive()  # it stopped sending: nothing more will come
    finally:
        stop.set()
        worker.join(30)
    counts = statuses(campaign)
    # Stopped before the campaign was over, counted in messages rather than timed (a loaded
    # machine stretches any wait): without the pause the worker sends the 130 left in 2.6 s.
    assert counts["sent"] == len(sink.received) < 150
    remaining = "queued" if action == "pause" else "skipped"
    assert counts == {"sent": counts["sent"], remaining: 150 - counts["sent"]}


def _retry_while_locked(action, attempts: int = 50):
    """Run ``action``, again while SQLite's shared in-memory test database says it is locked."""
    from django.db import OperationalError

    for _ in range(attempts - 1):
        try:
            return action()
        except OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.02)
    return action()


# --- several workers ---------------------------------------------------------------------------
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SKIP LOCKED needs PostgreSQL; SQLite: one writer"
)
@pytest.mark.django_db(transaction=True)
def test_two_workers_share_a_campaign_without_sending_anything_twice(sink, news, settings):
    settings.TIDINGS_DELIVERY_WINDOW = 20
    settings.TIDINGS_DELIVERY_CHUNK = 10
    people = subscribers(news, 300)
    campaign = sending_campaign(news)
    workers = []
    engines = []
    for _ in range(2):
        engine = Engine()
        engines.append(engine)

        def run(engine=engine) -> None:
            try:
                engine.run(until_idle=True, max_seconds=60)
            finally:
                connection.close()

        workers.append(threading.Thread(target=run))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(90)
    recipients = [r.recipient for r in sink.received]
    assert sorted(recipients) == sorted(p.email for p in people)  # each exactly once
    assert all(engine.stats.sent > 30 for engine in engines)  # both took part
    assert statuses(campaign) == {"sent": 300}
    assert len(set(Delivery.objects.values_list("transport", flat=True))) == 1


# --- workers that vanish ------------------------------------------------------------------------
def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_rows_of_a_crashed_worker_on_this_host_return_to_the_queue_at_once(news, caplog):
    import socket

    subscribers(news, 5)
    campaign = sending_campaign(news)
    gone = DeliveryWorker.objects.create(
        id="crashed", host=socket.gethostname(), pid=_dead_pid(), last_seen=timezone.now()
    )
    claim_batch(gone.pk, 3)
    with caplog.at_level(logging.WARNING, logger="tidings.campaigns.queue"):
        assert recover_abandoned("me") == 3
    assert statuses(campaign) == {"queued": 5}
    gone.refresh_from_db()
    assert gone.recovered_rows == 3 and gone.stopped_at is not None
    assert "recovered 3 rows from worker crashed" in caplog.text
    assert "(its process is gone)" in caplog.text  # noticed as a crash, not by its lease
    assert "up to 3 of them may have been delivered already" in caplog.text
    assert recover_abandoned("me") == 0  # once


def test_rows_of_a_silent_worker_elsewhere_return_only_after_its_lease(news, settings, caplog):
    settings.TIDINGS_DELIVERY_LEASE_SECONDS = 30
    subscribers(news, 4)
    sending_campaign(news)
    now = timezone.now()
    quiet = DeliveryWorker.objects.create(id="quiet", host="elsewhere", pid=1, last_seen=now)
    claim_batch("quiet", 2)
    assert recover_abandoned("me") == 0
    DeliveryWorker.objects.filter(pk=quiet.pk).update(last_seen=now - timedelta(seconds=31))
    with caplog.at_level(logging.WARNING, logger="tidings.campaigns.queue"):
        assert recover_abandoned("me") == 2
    assert "recovered 2 rows from worker quiet" in caplog.text
    assert "(no heartbeat for over 30 s)" in caplog.text


def test_a_crashed_worker_on_this_host_is_named_a_crash_even_after_its_lease(news, caplog):
    import socket

    subscribers(news, 3)
    sending_campaign(news)
    long_ago = timezone.now() - timedelta(hours=1)
    DeliveryWorker.objects.create(
        id="crashed", host=socket.gethostname(), pid=_dead_pid(), last_seen=long_ago
    )
    claim_batch("crashed", 2)
    with caplog.at_level(logging.WARNING, logger="tidings.campaigns.queue"):
        assert recover_abandoned("me") == 2
    assert "(its process is gone)" in caplog.text
    assert "no heartbeat" not in caplog.text


# --- one-off messages ---------------------------------------------------------------------------
def test_a_system_email_is_queued_with_the_transaction_and_sent_by_the_engine(sink, news):
    (ada,) = subscribers(news, 1)
    with transaction.atomic():
        send_system_email(ada, "preferences_link", {"preferences_url": "https://x/p/t"})
        transaction.set_rollback(True)
    assert not OutgoingMessage.objects.exists()
    send_system_email(ada, "preferences_link", {"preferences_url": "https://x/p/t"})
    queued = OutgoingMessage.objects.get()
    assert (queued.status, queued.kind) == ("queued", "system:preferences_link")
    deliver_pending()
    (received,) = sink.received
    assert received.recipient == ada.email
    assert "https://x/p/t" in received.message.get_body(("plain",)).get_content()
    assert received.message["Auto-Submitted"] == "auto-generated"
    queued.refresh_from_db()
    assert queued.status == "sent"
    assert (queued.subject, queued.text, queued.html) == ("", "", "")  # its links are gone


def test_system_emails_go_out_before_campaign_mail(sink, news, settings):
    settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
    settings.TIDINGS_DELIVERY_WINDOW = 10
    people = subscribers(news, 25)
    sending_campaign(news)
    newcomer = subscribers(make_list("Events", "events and webinars"), 1)[0]
    send_system_email(newcomer, "confirmation", {"lists": ["Events"], "confirm_url": "https://x"})
    deliver_pending()
    assert sink.received[0].recipient == newcomer.email
    assert len(sink.received) == len(people) + 1


def test_a_one_off_message_to_an_erased_contact_is_skipped(sink, news):
    (ada,) = subscribers(news, 1)
    send_system_email(ada, "preferences_link", {"preferences_url": "https://x/p/t"})
    OutgoingMessage.objects.update(contact=None)
    deliver_pending()
    assert OutgoingMessage.objects.get().status == "skipped"
    assert not sink.received


def test_a_transactional_message_renders_a_template_for_one_contact_and_goes_first(
    sink, news, settings
):
    from tidings.campaigns.models import Template
    from tidings.campaigns.rendering import ensure_default_layout
    from tidings.campaigns.transactional import enqueue_transactional

    subscribers(news, 5)
    sending_campaign(news)
    (ada,) = subscribers(make_list("Customers", "training"), 1)
    template = Template.objects.create(
        name="Receipt",
        layout=ensure_default_layout(),
        subject="Your receipt, {{ contact.first_name }}",
        body="Thank you for your order, {{ contact.name }}.",
    )
    queued = enqueue_transactional(template, ada)
    assert queued.kind == f"transactional:{template.pk}"
    # One connection, so the order of arrival is the order of sending (with several, a campaign
    # message sent just after it can arrive first).
    settings.TIDINGS_TRANSPORTS = transports_for(sink, concurrency=1)
    deliver_pending()
    first = sink.received[0]
    assert first.recipient == ada.email
    assert first.message["Subject"] == "Your receipt, Reader"
    assert "Thank you for your order" in first.message.get_body(("plain",)).get_content()
    assert len(sink.received) == 6


# --- a template that fails while sending ---------------------------------------------------------
def test_a_template_that_fails_while_sending_pauses_the_campaign_with_the_reason(
    sink, news, monkeypatch
):
    import tidings.campaigns.rendering as rendering

    # About the loop limit: on a loaded machine the 50 ms sample-render clock would win first.
    monkeypatch.setattr(rendering.contract, "CHECK_LIMITS", rendering.Limits(seconds=5.0))
    subscribers(news, 3)
    # Compiles, but every render goes over the loop limit (a campaign saved before a check).
    heavy = "{% for i in range(10000) %}{% for j in range(2) %}.{% endfor %}{% endfor %}"
    campaign = sending_campaign(news, body="Hello" + heavy)
    deliver_pending()
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.paused_reason.startswith("Paused automatically: the template failed: ")
    assert "more than 10,000 times" in campaign.paused_reason
    assert set(Delivery.objects.values_list("status", "attempts")) == {("queued", 0)}
    assert not sink.received
