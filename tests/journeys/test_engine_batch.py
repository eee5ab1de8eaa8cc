"""The engine's batch path: a claimed batch runs in one transaction with a fixed number of
queries, and still re-checks consent per person, isolates failures per person, and never sends
a step twice after a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from tests.journeys.helpers import make_list, make_template, subscriber, welcome, welcome_steps
from tests.journeys.test_steps import plan_policy  # noqa: F401 - a fixture
from tidings.audience.models import Subscription
from tidings.campaigns.models import OutgoingMessage, Template
from tidings.journeys import engine, mail
from tidings.journeys.actions import do_enrol
from tidings.journeys.models import Enrolment, EnrolmentStep

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _mail_to() -> list[int]:
    return sorted(
        OutgoingMessage.objects.filter(kind__startswith="journey:").values_list(
            "contact_id", flat=True
        )
    )


def _readers(journey, count: int, news=None) -> list:
    news = news or make_list()
    people = [subscriber(f"Reader {n}", news) for n in range(count)]
    for contact in people:
        if not Enrolment.objects.filter(journey=journey, contact=contact).exists():
            do_enrol(journey, contact)
    return people


def test_one_person_who_withdrew_just_before_leaves_with_the_reason_the_others_get_mail(
    time_machine,
):
    time_machine.move_to(START, tick=False)
    journey = welcome()
    people = _readers(journey, 4)
    bob = people[1]
    # Withdrawn behind the signals' back, just before the batch runs: the send step sees it.
    Subscription.objects.filter(contact=bob).update(status=Subscription.Status.UNSUBSCRIBED)
    assert engine.advance_due() == 2 * 3 + 1  # three sends and waits, one exit
    bobs = Enrolment.objects.get(contact=bob)
    assert (bobs.state, bobs.exit_reason) == ("exited", 'no consent to "product news" emails')
    assert bobs.history.get().outcome == "exited"
    assert _mail_to() == sorted(c.pk for c in people if c != bob)
    others = Enrolment.objects.exclude(contact=bob)
    assert set(others.values_list("state", "step", "seq")) == {("active", "tips", 2)}


def test_a_template_error_in_one_step_holds_back_only_its_people(time_machine, monkeypatch):
    time_machine.move_to(START, tick=False)
    news = make_list()
    good = welcome()
    make_template("Broken")
    bad = welcome(name="Tips", steps=welcome_steps("Broken"))
    Template.objects.filter(name="Broken").update(name="Gone")
    readers = _readers(good, 3, news)
    for contact in readers:
        do_enrol(bad, contact)
    # And one person whose own message fails to build (an unexpected error, not the template's).
    build = mail.StepMail.message
    carol = readers[2]

    def failing(self, contact, *args, **kwargs):
        if contact.pk == carol.pk and self.journey.pk == good.pk:
            raise RuntimeError("boom")
        return build(self, contact, *args, **kwargs)

    monkeypatch.setattr(mail.StepMail, "message", failing)
    assert engine.advance_due() == 4  # two people of the good journey: send and wait
    assert _mail_to() == sorted(c.pk for c in readers[:2])
    held = Enrolment.objects.filter(journey=bad)
    assert set(held.values_list("state", "step", "attempts", "error")) == {
        ("active", "hello", 1, 'the template "Broken" no longer exists')
    }
    assert all(e.next_run_at == START + timedelta(minutes=1) for e in held)
    carols = Enrolment.objects.get(journey=good, contact=carol)
    assert (carols.attempts, carols.error) == (1, "unexpected error (RuntimeError)")
    assert not Enrolment.objects.exclude(leased_by="").exists()  # every lease given back


@pytest.mark.parametrize("people", [3, 30])
def test_a_batch_takes_the_same_number_of_queries_whatever_its_size(
    people, django_assert_max_num_queries
):
    journey = welcome()
    _readers(journey, people)
    with django_assert_max_num_queries(18):
        assert engine.advance_due() == 2 * people
    assert len(_mail_to()) == people


def test_the_query_count_does_not_grow_with_the_batch():
    journey = welcome()
    news = make_list()
    counts = []
    for size in (1, 2, 20):  # the first stores the mail's link table
        for n in range(size):
            do_enrol(journey, subscriber(f"Reader {size}-{n}", news))
        with CaptureQueriesContext(connection) as queries:
            engine.advance_due()
        counts.append(len(queries))
    assert counts[1] == counts[2]


class Crash(BaseException):
    """The process dies (not an error the engine handles)."""


def test_a_batch_rerun_after_a_crash_between_insert_and_advance_sends_nothing_twice(
    time_machine, monkeypatch
):
    time_machine.move_to(START, tick=False)
    journey = welcome()
    people = _readers(journey, 5)

    def crash(items, worker):
        assert OutgoingMessage.objects.filter(kind__startswith="journey:").count() == 5
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(engine, "_advance_rows", crash)
        with pytest.raises(Crash):
            engine.advance_due(worker="dead")
    # The messages were inserted in the batch's transaction: they went with it.
    assert _mail_to() == []
    assert not EnrolmentStep.objects.exists()
    assert engine.advance_due(worker="b") == 0  # the dead worker's leases still hold
    time_machine.move_to(START + timedelta(seconds=engine.LEASE_SECONDS + 1), tick=False)
    assert engine.advance_due(worker="b") == 10
    assert _mail_to() == sorted(c.pk for c in people)
    assert engine.advance_due(worker="b") == 0
    assert len(_mail_to()) == 5


def test_a_batch_that_raises_runs_again_one_person_at_a_time(monkeypatch):
    journey = welcome()
    people = _readers(journey, 3)

    advance_rows = engine._advance_rows
    sizes = []

    def conflict(items, worker):
        sizes.append(len(items))
        if len(items) > 1:
            raise IntegrityError("the enrolment moved on meanwhile")
        advance_rows(items, worker)

    monkeypatch.setattr(engine, "_advance_rows", conflict)
    assert engine.advance_due() == 6
    assert sizes == [3, 1, 1, 1]  # the batch, then each person by the same code
    assert _mail_to() == sorted(c.pk for c in people)
    assert EnrolmentStep.objects.filter(outcome="sent").count() == 3


@pytest.mark.usefixtures("plan_policy")
def test_a_send_after_set_attribute_in_the_same_batch_renders_the_new_value():
    steps = [
        {"id": "tag", "kind": "set_attribute", "key": "plan", "value": "pro"},
        {
            "id": "hello",
            "kind": "send_email",
            "template": "Welcome",
            "subject": "Your plan: {{ contact.attributes.plan }}",
        },
        {"id": "end", "kind": "end"},
    ]
    journey = welcome(steps=steps, goals=[])
    _readers(journey, 2)
    assert engine.advance_due() == 2 * 3
    subjects = OutgoingMessage.objects.filter(kind__startswith="journey:").values_list(
        "subject", flat=True
    )
    assert list(subjects) == ["Your plan: pro"] * 2


def test_suppressed_addresses_and_domains_leave_the_batch_with_their_reasons():
    from tidings.audience.models import SuppressedDomain
    from tidings.audience.suppression import do_suppress

    journey = welcome()
    news = make_list()
    ann = subscriber("Ann Example", news, email="ann@example.org")
    bob = subscriber("Bob Example", news, email="bob@mail.blocked.example")
    cat = subscriber("Cat Example", news, email="cat@example.org")
    for contact in (ann, bob, cat):
        do_enrol(journey, contact)
    do_suppress("ann@example.org", "complained")
    SuppressedDomain.objects.create(domain="blocked.example")  # covers its subdomains
    engine.advance_due()
    reasons = dict(Enrolment.objects.values_list("contact_id", "exit_reason"))
    assert reasons == {
        ann.pk: "address suppressed (complained)",
        bob.pk: "address suppressed (manual)",
        cat.pk: "",
    }
    assert _mail_to() == [cat.pk]
