"""Erasure misses nothing, by construction: every registered source is filled for two people, one
is erased, and a scan of every table and column of the database finds nothing of theirs but
what the legal holds on the receipt keep, while the other person's data is whole.  The same after
a retention sweep that expires a person entirely; a property test over random combinations of
records; and the scan fails when any one source's erasure is taken away."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hypothesis_profiles import examples
from tidings import signals
from tidings.audience import sources as registry
from tidings.audience.actions import do_unsubscribe_all
from tidings.audience.models import Contact
from tidings.audience.sources import People, sources
from tidings.crm.actions import do_update_support_contact
from tidings.crm.models import Order, SupportContact
from tidings.rights.actions import do_erase_contact
from tidings.rights.erasure import kept_for
from tidings.rights.retention import run_retention

from .generators import GENERATORS, Person, distinct_ids, fill, new_person
from .scan import LeftBehind, assert_nothing_left, holds, scan

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def exports(person: Person) -> dict[str, list]:
    """Everything the access package holds about ``person``, per source."""
    return {s.name: s.export(person.contact) for s in sources()}


def erase_and_scan(person: Person):
    """Erase ``person`` and scan the database; raises LeftBehind (or IntegrityError when a row
    still points at one the erasure deleted).  Returns the receipt."""
    receipt = do_erase_contact(person.contact)
    connection.check_constraints()  # PostgreSQL checked inside the erasure; SQLite at commit
    assert_nothing_left(person, holds(receipt.kept))
    return receipt


# --- the registry and its generators ----------------------------------------------------------
def test_every_registered_source_has_a_generator():
    assert set(GENERATORS) == {s.name for s in sources()}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_each_generator_fills_its_source_and_the_source_finds_it(name):
    distinct_ids()
    person = fill(new_person(), {name})
    source = registry.source(name)

    assert source.export(person.contact), f"{name}: the export finds nothing"
    if source.find is not None:
        assert source.find(People.of(person.contact)), f"{name}: erasure would find nothing"


# Sources whose rows hold nothing of the person but a link to another source's row: one left
# behind points at a deleted row, which the database's foreign-key check refuses (the test
# below shows it for each).
ONLY_LINKED = {
    "demo bookings": "a booking holds its enquiry's id, and times",
    "journey history": "a step holds its enrolment's id, a step id, a time and an outcome",
    "journey mail opens and clicks": "an open holds its step's id, a kind and a time",
}


def test_the_scan_sees_every_source_of_a_person_before_erasure():
    distinct_ids()
    ada = fill(new_person())

    tables = {hit.table for hit in scan(ada)}

    for source in sources():
        if source.name in ONLY_LINKED:
            continue
        for model in source.models:
            assert model._meta.db_table in tables, f"the scan cannot see {source.name}"


# --- erasure on request -----------------------------------------------------------------------
def test_erasing_one_of_two_people_leaves_nothing_of_theirs_but_the_holds_on_the_receipt():
    distinct_ids()
    ada = fill(new_person())
    bob = fill(new_person())
    bob_before = exports(bob)

    receipt = erase_and_scan(ada)

    assert exports(bob) == bob_before
    assert_nothing_left_but = holds(receipt.kept)
    kept_tables = {h.model._meta.label for h in assert_nothing_left_but}
    # What the example policy's legal holds keep, each in a sentence on the receipt.
    assert kept_tables == {
        "audience.Contact",
        "audience.Suppression",
        "crm.Order",
        "rights.RightsRequest",
    }
    assert Order.objects.filter(contact=ada.contact).count() == 1  # the recent order only
    assert set(receipt.counts) == {s.name for s in sources() if s.find is not None}


def test_a_person_nothing_holds_is_gone_entirely():
    distinct_ids()
    ada = fill(new_person(), set(GENERATORS) - {"orders"})
    bob = fill(new_person())
    bob_before = exports(bob)

    receipt = erase_and_scan(ada)

    assert {h.model._meta.label for h in holds(receipt.kept)} == {
        "audience.Suppression",
        "rights.RightsRequest",
    }
    assert exports(bob) == bob_before


def test_the_queued_demo_invitation_loses_its_attachment_at_once():
    from tidings.campaigns.models import OutgoingMessage

    distinct_ids()
    ada = fill(new_person(), {"demo bookings"})
    queued = OutgoingMessage.objects.get(kind="system:demo_booked", status="queued")
    assert ada.email in queued.attachments[0]["content"].replace("\r\n ", "")

    erase_and_scan(ada)

    queued.refresh_from_db()
    assert queued.attachments == [] and queued.contact_id is None and queued.text == ""


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ada_sources=st.sets(st.sampled_from(sorted(GENERATORS))),
    bob_sources=st.sets(st.sampled_from(sorted(GENERATORS))),
)
def test_any_combination_of_records_is_erased_and_nobody_elses(ada_sources, bob_sources):
    with transaction.atomic():
        cache.clear()
        distinct_ids()
        ada = fill(new_person(), ada_sources)
        bob = fill(new_person(), bob_sources)
        bob_before = exports(bob)

        erase_and_scan(ada)

        assert exports(bob) == bob_before
        transaction.set_rollback(True)


# --- every source's erasure is needed ---------------------------------------------------------
@pytest.mark.parametrize("name", sorted(s.name for s in sources() if s.remove is not None))
def test_the_scan_fails_when_one_sources_erasure_is_taken_away(name, monkeypatch):
    distinct_ids()
    ada = fill(new_person())
    source = registry.source(name)
    monkeypatch.setitem(
        registry._SOURCES, name, registry.PersonalData(**{**source.__dict__, "remove": None})
    )

    with pytest.raises((LeftBehind, IntegrityError)) as caught, transaction.atomic():
        erase_and_scan(ada)

    if isinstance(caught.value, LeftBehind):
        tables = {hit.table for hit in caught.value.hits}
        assert tables & {m._meta.db_table for m in source.models}, tables


# --- the retention sweep ----------------------------------------------------------------------
def _expire_everything_of(person: Person) -> None:
    """What ends each of a person's records under the example policy: they leave every list and
    their employer (their enquiries, orders and events age out by themselves)."""
    do_unsubscribe_all(person.contact, source="preferences")
    for support in SupportContact.objects.filter(contact=person.contact):
        do_update_support_contact(support, left_employer=timezone.localdate(), actor=None)


def test_a_retention_sweep_that_expires_a_person_entirely_leaves_nothing_of_theirs():
    distinct_ids()
    bob = fill(new_person(), set(GENERATORS) - {"orders"})
    run_retention()  # what of Bob's ends at once (the list he left) goes first
    bob_before = exports(bob)
    eight_years_ago = timezone.now() - timedelta(days=8 * 366)
    with time_machine.travel(eight_years_ago, tick=True):
        ada = fill(new_person())
        _expire_everything_of(ada)

    run = run_retention()

    assert run.contacts == 1
    connection.check_constraints()
    assert_nothing_left(ada, holds(kept_for(People(emails=(ada.email,)))))
    assert {h.model._meta.label for h in holds(kept_for(People(emails=(ada.email,))))} == {
        "audience.Suppression",
        "rights.RightsRequest",
    }
    assert exports(bob) == bob_before


# --- listeners that must outlive an erasure ---------------------------------------------------
@pytest.fixture
def erased_signals():
    heard = []

    def listen(sender, **kwargs):
        heard.append(kwargs)

    signals.contact_erased.connect(listen, dispatch_uid="test-erasure-scan")
    yield heard
    signals.contact_erased.disconnect(dispatch_uid="test-erasure-scan")


def test_an_erasure_on_request_is_announced_after_it_commits(
    erased_signals, django_capture_on_commit_callbacks
):
    ada = fill(new_person(), {"enquiries"})

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        do_erase_contact(ada.contact)
    assert erased_signals == []  # nothing before the commit
    for callback in callbacks:
        callback()

    (heard,) = erased_signals
    assert heard["email_hmac"] == ada.hmac and heard["reason"] == "request"
    assert heard["erased_at"].tzinfo is not None
    assert set(heard) - {"signal"} == {"email_hmac", "erased_at", "reason"}  # no id survives


def test_an_erasure_that_rolls_back_is_not_announced(
    erased_signals, django_capture_on_commit_callbacks, monkeypatch
):
    ada = fill(new_person(), {"enquiries"})
    source = registry.source("enquiries")

    def crash(found):
        raise RuntimeError("the machine lost power")

    monkeypatch.setitem(
        registry._SOURCES,
        "enquiries",
        registry.PersonalData(**{**source.__dict__, "remove": crash}),
    )
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        do_erase_contact(ada.contact)

    assert erased_signals == []


def test_the_retention_sweep_announces_each_person_it_erases(
    erased_signals, django_capture_on_commit_callbacks
):
    with time_machine.travel(timezone.now() - timedelta(days=800), tick=True):
        ada = fill(new_person(), {"enquiries"})
    bob = fill(new_person(), {"enquiries"})

    with django_capture_on_commit_callbacks(execute=True):
        run_retention()

    assert [(h["email_hmac"], h["reason"]) for h in erased_signals] == [(ada.hmac, "retention")]
    assert bob.hmac not in str(erased_signals)


def test_the_sweep_refuses_to_leave_a_row_pointing_at_a_person_it_erased(monkeypatch):
    """A source that found nothing it should have: the sweep's batch fails (PostgreSQL: its
    set-based check of every relation; SQLite: the foreign keys at commit), nothing is lost."""
    with time_machine.travel(timezone.now() - timedelta(days=800), tick=True):
        ada = fill(new_person(), {"enquiries", "bounce_reports"})
    source = registry.source("bounce_reports")
    monkeypatch.setitem(
        registry._SOURCES,
        "bounce_reports",
        registry.PersonalData(**{**source.__dict__, "remove": None}),
    )

    with pytest.raises(IntegrityError), transaction.atomic():
        run_retention()
        connection.check_constraints()

    assert Contact.objects.filter(pk=ada.contact.pk).exists()
