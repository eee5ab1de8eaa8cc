"""Segments on engagement: opened_in(), clicked_in() and received_in() read people's deliveries
and tracking events; machine opens and clicks are not engagement.

The segments read facts kept on the contact (latest open, click, campaign received) by the
writers of events and deliveries; these tests write through those writers (the events' recorder,
the queue's results, the retention sweep) and check the facts against the definition, an EXISTS
over the events and deliveries themselves (``engagement.EXISTS_FORMS``)."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.campaigns.delivery_helpers import make_list, sending_campaign, subscribers
from tests.hypothesis_profiles import examples
from tidings.audience.models import Contact
from tidings.audience.segments import count_segment, engagement, segment_queryset
from tidings.campaigns import engagement as facts
from tidings.campaigns.events import NewEvent, record_delivery_event, record_events
from tidings.campaigns.models import Campaign, Delivery, Event
from tidings.campaigns.queue import Result, claim_batch, record_results
from tidings.rights.erasure import erase_person
from tidings.rights.retention import SWEEPS

pytestmark = pytest.mark.django_db

_lists = itertools.count(1)


def emails(text: str) -> set[str]:
    return set(segment_queryset(text).values_list("email", flat=True))


def sent(people: int, *, ago: timedelta = timedelta(hours=1)) -> list[Delivery]:
    """A campaign to ``people`` new subscribers, sent ``ago`` through the queue (claim, send,
    record the results), as the engine sends it."""
    news = make_list(f"List {next(_lists)}")
    subscribers(news, people)
    campaign = sending_campaign(news)
    with time_machine.travel(timezone.now() - ago, tick=False):
        rows = claim_batch("worker-test", 1000)
        assert record_results("worker-test", [Result(row, "sent") for row in rows]) == people
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.FINISHED)
    return list(Delivery.objects.filter(campaign=campaign).order_by("pk"))


def send_to(contact: Contact, *, ago: timedelta, status: str = "sent") -> Delivery:
    """One campaign to one person, through the queue: sent (or failed, skipped) ``ago``."""
    campaign = Campaign.objects.create(
        name=f"To one {next(_lists)}", subject="s", topic="news", status=Campaign.Status.SENDING
    )
    delivery = Delivery.objects.create(campaign=campaign, contact=contact)
    with time_machine.travel(timezone.now() - ago, tick=False):
        (row,) = claim_batch("worker-test", 1)
        record_results("worker-test", [Result(row, status, error="refused")])
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.FINISHED)
    return delivery


def event(delivery, kind, days_ago, *, machine=False, link=None):
    at = timezone.now() - timedelta(days=days_ago)
    record_delivery_event(delivery.pk, kind, at=at, machine=machine, link=link)


def test_opened_in_counts_a_person_who_opened_or_clicked_since_then_once():
    reader, clicker, old, proxied = sent(4, ago=timedelta(days=200))
    event(reader, "open", 10)
    event(reader, "open", 5)  # twice: still one person
    event(clicker, "click", 20, link=0)  # images blocked, but the click proves the open
    event(old, "open", 120)
    event(proxied, "open", 3, machine=True)  # Apple's proxy opens every message
    assert emails("opened_in(90d)") == {reader.contact.email, clicker.contact.email}
    assert count_segment("opened_in(90d)") == 2
    assert emails("opened_in(1y)") == {reader.contact.email, clicker.contact.email,
                                       old.contact.email}  # fmt: skip
    assert proxied.contact.email in emails("not opened_in(1y)")


def test_clicked_in_counts_human_clicks_only():
    clicker, scanned, opener = sent(3)
    event(clicker, "click", 2, link=1)
    event(scanned, "click", 2, link=1, machine=True)  # a link scanner of the mail gateway
    event(opener, "open", 2)
    assert emails("clicked_in(30d)") == {clicker.contact.email}


def test_received_in_counts_messages_sent_since_then():
    (recent,) = sent(1, ago=timedelta(days=3))
    (old,) = sent(1, ago=timedelta(days=60))
    news = make_list("Queued only")
    (waiting,) = subscribers(news, 1)
    sending_campaign(news)  # queued, never sent
    assert emails("received_in(30d)") == {recent.contact.email}
    assert emails("received_in(90d) and not opened_in(90d)") == {
        recent.contact.email,
        old.contact.email,
    }
    assert waiting.email in emails("not received_in(1y)")


def test_a_failed_or_lost_send_is_not_a_message_received():
    news = make_list("Failures")
    failed, lost, ok = subscribers(news, 3)
    sending_campaign(news)
    claimed = claim_batch("worker-test", 10)
    # Each person's row, in the order failed, lost, ok (the queue's ids need not follow the
    # contacts' order: on PostgreSQL they do not).
    contact_of = dict(
        Delivery.objects.filter(pk__in=[r.id for r in claimed]).values_list("pk", "contact_id")
    )
    order = {failed.pk: 0, lost.pk: 1, ok.pk: 2}
    rows = sorted(claimed, key=lambda r: order[contact_of[r.id]])
    Delivery.objects.filter(pk=rows[1].id).update(status="queued", leased_by="")  # taken back
    results = [Result(rows[0], "failed", error="550"), Result(rows[1], "sent")]
    record_results("worker-test", [*results, Result(rows[2], "sent")])
    assert emails("received_in(1d)") == {ok.email}
    assert {failed.email, lost.email} <= emails("not received_in(1d)")


def test_the_facts_only_move_forward_whatever_order_events_arrive_in():
    (delivery,) = sent(1, ago=timedelta(days=30))
    event(delivery, "click", 2, link=0)
    event(delivery, "open", 20)  # a late batch with an older open
    contact = Contact.objects.get(pk=delivery.contact_id)
    assert contact.last_opened_at == contact.last_clicked_at
    assert timezone.now() - contact.last_opened_at < timedelta(days=2, minutes=1)


def test_the_retention_sweep_of_events_takes_the_facts_they_gave_with_them():
    opened_twice, opened_once = sent(2, ago=timedelta(days=800))
    with time_machine.travel(timezone.now() - timedelta(days=780), tick=False):
        event(opened_twice, "open", 0)
        event(opened_once, "click", 0, link=0)
    event(send_to(opened_twice.contact, ago=timedelta(days=10)), "open", 5)  # again, recently
    assert emails("opened_in(3y)") == {opened_twice.contact.email, opened_once.contact.email}
    sweep = SWEEPS["email_event"]
    expired = Event.objects.filter(at__lt=timezone.now() - timedelta(days=700))
    with transaction.atomic():
        ids = list(expired.values_list("pk", flat=True))
        sweep.erase(ids, {opened_twice.contact_id, opened_once.contact_id})
    assert emails("opened_in(3y)") == {opened_twice.contact.email}
    assert emails("clicked_in(3y)") == set()
    assert Contact.objects.get(pk=opened_once.contact_id).last_opened_at is None
    assert_facts_match_events()


def test_an_erased_person_kept_for_a_legal_hold_keeps_no_engagement(settings):
    from tidings.crm.models import Order

    (delivery,) = sent(1, ago=timedelta(days=3))
    event(delivery, "click", 1, link=0)
    contact = Contact.objects.get(pk=delivery.contact_id)
    Order.objects.create(contact=contact, order_reference="A-1")  # kept for six years
    erase_person(contact)
    kept = Contact.objects.get(pk=contact.pk)
    assert (kept.last_opened_at, kept.last_clicked_at, kept.last_received_at) == (None,) * 3
    assert count_segment("opened_in(1y) or clicked_in(1y) or received_in(1y)") == 0


def test_rebuild_recomputes_facts_changed_behind_the_writers_back():
    reader, other = sent(2, ago=timedelta(days=5))
    event(reader, "open", 1)
    Contact.objects.filter(pk=other.contact_id).update(last_opened_at=timezone.now())  # wrong
    Event.objects.filter(delivery=reader).delete()  # outside tidings: the fact is stale
    facts.rebuild(batch=1)
    assert emails("opened_in(1y)") == set()
    assert emails("received_in(1y)") == {reader.contact.email, other.contact.email}


# --- the facts against the definition, on generated data ---------------------------------------
DURATIONS = ("1d", "7d", "30d", "90d", "180d", "1y")


@contextlib.contextmanager
def exists_providers():
    """The segment functions answered by the EXISTS definition instead of the facts."""
    with engagement.kept():
        for name, provider in facts.EXISTS_FORMS.items():
            engagement.register(name, provider)
        yield


def assert_facts_match_events() -> None:
    now = timezone.now()
    everyone = set(Contact.objects.values_list("pk", flat=True))
    for name, days in itertools.product(facts.FACT_FORMS, (1, 7, 30, 90, 180, 365, 2000)):
        since = now - timedelta(days=days)
        by_facts = set(Contact.objects.filter(facts.FACT_FORMS[name](since)).values_list("pk"))
        by_events = set(Contact.objects.filter(facts.EXISTS_FORMS[name](since)).values_list("pk"))
        assert by_facts == by_events, (name, days)
        negated = set(Contact.objects.filter(~facts.FACT_FORMS[name](since)).values_list("pk"))
        assert {pk for (pk,) in negated} == everyone - {pk for (pk,) in by_facts}
    composed = [
        f"received_in({a}) and not opened_in({b})" for a, b in itertools.pairwise(DURATIONS)
    ] + [f"clicked_in({a}) or not received_in({a})" for a in DURATIONS]
    for text in composed:
        fast = {c.pk for c in segment_queryset(text, now=now)}
        with exists_providers():
            slow = {c.pk for c in segment_queryset(text, now=now)}
        assert fast == slow, text


HUMAN_OR_MACHINE = st.tuples(
    st.integers(0, 5),  # which delivery
    st.sampled_from(["open", "click", "bounce_soft", "unsubscribe"]),
    st.integers(0, 400 * 24),  # hours ago
    st.booleans(),  # by a machine
)
DELIVERY = st.tuples(
    st.integers(0, 3),  # which person
    st.sampled_from(["sent", "sent", "failed", "retry", "skipped", "released"]),
    st.integers(0, 400 * 24),  # hours ago
)


@hypothesis_settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    deliveries=st.lists(DELIVERY, min_size=1, max_size=6),
    batches=st.lists(st.lists(HUMAN_OR_MACHINE, max_size=8), max_size=4),
    swept_before_hours=st.one_of(st.none(), st.integers(0, 400 * 24)),
)
def test_the_facts_answer_exactly_as_the_events_do(deliveries, batches, swept_before_hours):
    Event.objects.all().delete()
    Delivery.objects.all().delete()
    Campaign.objects.all().delete()
    Contact.objects.all().delete()
    now = timezone.now()
    people = [Contact.objects.create(email=f"p{i}@example.org") for i in range(4)]
    rows = [
        send_to(people[person], ago=timedelta(hours=hours), status=status)
        for person, status, hours in deliveries
    ]
    for batch in batches:  # each as the tracking ingest writes one: out of order, mixed
        record_events(
            [
                NewEvent(
                    rows[which % len(rows)].pk,
                    kind,
                    now - timedelta(hours=hours),
                    0 if kind == "click" else None,
                    machine,
                )
                for which, kind, hours, machine in batch
            ]
        )
    if swept_before_hours is not None:  # the retention sweep removes the older events
        expired = Event.objects.filter(at__lt=now - timedelta(hours=swept_before_hours))
        contact_ids = set(expired.values_list("delivery__contact_id", flat=True))
        with transaction.atomic():
            ids = list(expired.values_list("pk", flat=True))
            SWEEPS["email_event"].erase(ids, contact_ids)
    with time_machine.travel(now, tick=False):
        assert_facts_match_events()


def test_the_segment_functions_read_the_facts_not_the_events():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        count_segment("opened_in(90d) or clicked_in(30d) or not received_in(30d)")
    sql = queries.captured_queries[-1]["sql"]
    assert "campaigns_event" not in sql and "campaigns_delivery" not in sql
