"""The retention sweep: records go when the policy says, in batches, and nothing else goes.

The seasons are walked with time-machine; the query that finds expired records is checked against
``Policy.expires_at`` with hypothesis, so the SQL and the rule cannot disagree.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from dateutil.relativedelta import relativedelta
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.audience.public_helpers import reset, use_outbox, write_policy
from tests.hypothesis_profiles import examples
from tidings.audience.actions import do_create_contact, do_subscribe, do_unsubscribe
from tidings.audience.emails import email_hmac
from tidings.audience.models import ConsentEvent, Contact, MailingList, Subscription, Suppression
from tidings.crm.actions import (
    NotExtendable,
    do_add_support_contact,
    do_create_contract,
    do_create_order,
    do_create_organisation,
    do_extend_retention,
    do_receive_enquiry,
    do_update_support_contact,
)
from tidings.crm.models import Enquiry, Order, SupportContact, SupportRequest
from tidings.lib.audit import audit
from tidings.lib.models import AuditEntry
from tidings.policy import get_policy
from tidings.policy.durations import Duration
from tidings.policy.records import RECORD_KINDS
from tidings.rights.retention import (
    SWEEPS,
    expired_ranges,
    expired_records,
    expiry,
    instant,
    is_expired,
    latest_start,
    monotone,
    retention_status,
    run_retention,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings):
    use_outbox(settings)
    reset()
    yield
    reset()


def at(moment: str):
    """Travel to an ISO moment (UTC unless it says otherwise), the clock standing still."""
    text = moment if ("Z" in moment or "+" in moment[10:]) else moment + "Z"
    return time_machine.travel(text, tick=False)


def enquiry(email="ada@example.com", name="Ada Lovelace", **kwargs) -> Enquiry:
    return do_receive_enquiry(
        {"name": name, "email": email}, channel="email", message="Do you train?", **kwargs
    )


def exists(record) -> bool:
    return type(record)._base_manager.filter(pk=record.pk).exists()


def sweep(**kwargs):
    return run_retention(actor_label="test", **kwargs)


# --- the seasons ------------------------------------------------------------------------------
def test_an_enquiry_eleven_months_old_stays_and_one_twelve_months_and_a_day_old_goes():
    with at("2026-03-01 10:00"):
        old = enquiry()
    with at("2027-02-01 10:00"):  # 11 months after the last contact
        sweep()
        assert exists(old)
    with at("2027-03-01 09:59"):  # a minute short of 12 months
        sweep()
        assert exists(old)
    with at("2027-03-02 10:00"):  # 12 months and a day
        result = sweep()
        assert not exists(old)
    assert result.counts["enquiry"] == 1
    assert not Contact.objects.filter(email="ada@example.com").exists()  # nothing else held her


def test_each_contact_with_us_about_an_enquiry_restarts_its_twelve_months():
    from tidings.crm.actions import do_record_enquiry_contact

    with at("2026-03-01 10:00"):
        kept = enquiry()
    with at("2026-12-01 10:00"):
        do_record_enquiry_contact(kept, actor=None)
    with at("2027-03-02 10:00"):
        sweep()
        assert exists(kept)
    with at("2027-12-02 10:00"):
        sweep()
        assert not exists(kept)


@pytest.fixture
def customer():
    """Initech, with a contract from 2025 to the end of June 2026 and three people on it."""
    with at("2025-01-01 09:00"):
        initech = do_create_organisation(name="Initech")
        do_create_contract(initech, start=date(2025, 1, 1), end=date(2026, 6, 30))
        people = {}
        for name in ("Peter", "Samir", "Milton"):
            people[name], _ = do_add_support_contact(
                {"name": name, "email": f"{name.lower()}@initech.example", "company": "Initech"},
                organisation=initech,
            )
    return initech, people


def test_a_support_contact_goes_twelve_months_after_the_contract_ends_or_they_left_whichever_first(
    customer,
):
    _, people = customer
    peter, samir, milton = people["Peter"], people["Samir"], people["Milton"]
    with at("2026-01-31 12:00"):
        do_update_support_contact(samir, left_employer=date(2026, 1, 31), actor=None)
    with at("2026-09-15 12:00"):  # left after the contract ended: the contract's end comes first
        do_update_support_contact(milton, left_employer=date(2026, 9, 15), actor=None)

    with at("2027-01-31 08:00"):  # 12 months after Samir left: he goes (midnight, UTC)
        sweep()
        assert not exists(samir)
        assert exists(peter) and exists(milton)
    with at("2027-06-29 23:59"):
        sweep()
        assert exists(peter) and exists(milton)
    with at("2027-07-01 00:00"):  # 12 months after the contract ended, before Milton's anniversary
        sweep()
        assert not exists(peter) and not exists(milton)
    assert not Contact.objects.filter(email__endswith="@initech.example").exists()


def test_a_support_contact_stays_while_any_contract_of_their_organisation_runs_on(customer):
    initech, people = customer
    with at("2026-05-01 09:00"):
        do_create_contract(initech, start=date(2026, 7, 1))  # renewed, open-ended
    with at("2030-01-01 09:00"):
        sweep()
        assert all(exists(p) for p in people.values())
        assert retention_status(people["Peter"]).expires_at is None


def test_support_requests_go_with_the_support_contact_they_came_from(customer):
    from tidings.crm.actions import do_create_support_request

    _, people = customer
    with at("2026-02-01 09:00"):
        request = do_create_support_request(people["Peter"], subject="Printer", notes="PC LOAD")
    with at("2027-07-02 09:00"):
        sweep()
    assert not exists(request)
    assert not SupportRequest.objects.exists()


def test_orders_are_kept_six_years_even_when_everything_else_of_the_person_goes_then_removed():
    person = {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Analytical"}
    with at("2026-03-01 10:00"):
        enquiry()
        order = do_create_order(person, organisation=None, order_reference="A-1")
    with at("2027-03-02 10:00"):
        result = sweep()
        assert result.counts["enquiry"] == 1
        assert exists(order)
        assert Contact.objects.filter(email="ada@example.com").exists()  # the order holds her
    with at("2032-02-28 10:00"):
        sweep()
        assert exists(order)
        status = retention_status(order)
        assert status.legal_minimum and "legal minimum" in status.text
    with at("2032-03-01 10:00"):
        result = sweep()
    assert not exists(order)
    assert result.counts["order"] == 1 and result.contacts == 1
    assert not Contact.objects.filter(email="ada@example.com").exists()


# --- subscriptions ----------------------------------------------------------------------------
@pytest.fixture
def lists():
    return (
        MailingList.objects.create(name="Product news", topic="product news"),
        MailingList.objects.create(name="Events", topic="events and webinars"),
    )


def subscriber(email: str, *mailing_lists: MailingList) -> Contact:
    contact, _ = do_create_contact({"name": "Grace", "email": email}, purpose="newsletter")
    for ml in mailing_lists:
        do_subscribe(contact, ml, source="form", wording_text="Yes please", confirmed=True)
    return contact


def test_a_subscription_that_ends_is_erased_and_only_a_hash_of_the_address_survives(lists):
    news, _ = lists
    with at("2026-03-01 10:00"):
        grace = subscriber("grace@example.com", news)
        events = ConsentEvent.objects.filter(contact=grace).count()
    with at("2026-04-01 10:00"):
        do_unsubscribe(grace, news, source="unsubscribe")
    with at("2026-04-02 03:00"):
        result = sweep()

    assert result.counts["subscription"] == 1
    assert not Subscription.objects.exists()
    assert not Contact.objects.filter(email="grace@example.com").exists()
    entry = Suppression.objects.get(email_hmac=email_hmac("grace@example.com"))
    assert entry.reason == Suppression.Reason.UNSUBSCRIBED
    # Her consent events stay, as anonymous tombstones.
    tombstones = ConsentEvent.objects.filter(contact__isnull=True)
    assert tombstones.count() == events + 1
    assert not tombstones.filter(ip_address__isnull=False).exists()


def test_a_closed_list_ends_its_subscriptions_but_the_people_on_other_lists_stay_reachable(lists):
    from tidings.audience.operator import do_close_list

    news, events = lists
    with at("2026-03-01 10:00"):
        grace = subscriber("grace@example.com", news, events)
        only_news = subscriber("only@example.com", news)
    with at("2026-05-01 10:00"):
        do_close_list(news, actor=None)
    with at("2026-05-02 10:00"):
        result = sweep()

    assert result.counts["subscription"] == 2
    assert list(Subscription.objects.values_list("contact_id", "mailing_list_id")) == [
        (grace.pk, events.pk)
    ]
    assert not Suppression.objects.filter(email_hmac=email_hmac("grace@example.com")).exists()
    assert Suppression.objects.filter(email_hmac=email_hmac("only@example.com")).exists()
    assert not Contact.objects.filter(pk=only_news.pk).exists()


def test_a_confirmed_subscription_on_an_open_list_is_never_swept(lists):
    news, _ = lists
    with at("2020-01-01 10:00"):
        grace = subscriber("grace@example.com", news)
    with at("2035-01-01 10:00"):
        sweep()
    assert Subscription.objects.filter(contact=grace).exists()


# --- contacts left with nothing ---------------------------------------------------------------
def test_a_contact_left_with_nothing_is_erased_and_one_with_anything_else_is_kept(lists):
    news, _ = lists
    with at("2026-03-01 10:00"):
        enquiry("ada@example.com")
        enquiry("grace@example.com", name="Grace")
        do_subscribe(
            Contact.objects.get(email="grace@example.com"),
            news,
            source="form",
            wording_text="Yes please",
            confirmed=True,
        )
    with at("2027-03-02 10:00"):
        result = sweep()
    assert result.counts["enquiry"] == 2 and result.contacts == 1
    assert list(Contact.objects.values_list("email", flat=True)) == ["grace@example.com"]


def test_campaign_statistics_and_sent_mail_survive_the_people_they_counted():
    from tidings.campaigns.models import Campaign, Delivery, OutgoingMessage

    with at("2026-03-01 10:00"):
        ada = enquiry().contact
        campaign = Campaign.objects.create(name="Spring", subject="News", topic="product news")
        Delivery.objects.create(campaign=campaign, contact=ada, status=Delivery.Status.SENT)
        OutgoingMessage.objects.create(
            kind="system:confirmation", contact=ada, from_email="news@example.co.uk", status="sent"
        )
    with at("2027-03-02 10:00"):
        result = sweep()
    assert result.contacts == 1
    delivery = Delivery.objects.get()
    assert delivery.contact_id is None and delivery.status == Delivery.Status.SENT
    assert campaign.deliveries.filter(status=Delivery.Status.SENT).count() == 1
    assert OutgoingMessage.objects.get().contact_id is None


# --- extensions on request --------------------------------------------------------------------
def test_an_extension_on_request_pushes_the_expiry_and_records_who_asked(owner):
    with at("2026-03-01 10:00"):
        kept = enquiry()
        assert retention_status(kept).text == (
            "Erased on 2027-03-01 unless the person asks us to keep it longer."
        )
    with at("2027-01-15 10:00"):
        do_extend_retention(
            kept, until=date(2028, 1, 31), requested_by="Ada, by email", actor=owner
        )
    kept.refresh_from_db()
    assert kept.kept_until_requested_by == "Ada, by email"
    assert kept.kept_until_recorded_by == owner
    assert kept.kept_until_recorded_at == datetime(2027, 1, 15, 10, tzinfo=UTC)
    assert expiry(kept) == date(2028, 1, 31)
    entry = AuditEntry.objects.get(action="retention.extended")
    assert entry.details == {"kind": "enquiry", "until": "2028-01-31"}
    assert entry.actor == owner and entry.object_id == str(kept.pk)

    with at("2027-03-02 10:00"):
        sweep()
        assert exists(kept)
        assert retention_status(kept).text == (
            "Erased on 2028-01-31, kept longer at the person's request."
        )
    with at("2028-01-30 23:59"):
        sweep()
        assert exists(kept)
    with at("2028-01-31 00:00"):
        sweep()
        assert not exists(kept)


def test_an_extension_can_only_push_the_date_out_and_only_where_the_policy_allows_it(owner):
    with at("2026-03-01 10:00"):
        kept = enquiry()
        order = do_create_order(
            {"name": "Ada", "email": "ada@example.com", "company": "Analytical"},
            organisation=None,
        )
        with pytest.raises(NotExtendable, match="after the one"):
            do_extend_retention(kept, until=date(2027, 3, 1), requested_by="Ada", actor=owner)
        with pytest.raises(NotExtendable, match="does not let"):
            do_extend_retention(order, until=date(2040, 1, 1), requested_by="Ada", actor=owner)
        with pytest.raises(NotExtendable, match="who asked"):
            do_extend_retention(kept, until=date(2028, 1, 1), requested_by=" ", actor=owner)
    assert not Enquiry.objects.exclude(kept_until=None).exists()
    assert not retention_status(order).extendable and retention_status(kept).extendable


# --- runs: dry, audited, batched, scheduled ---------------------------------------------------
def test_a_dry_run_changes_nothing_and_prints_what_it_would_remove_by_kind(lists):
    news, _ = lists
    with at("2026-03-01 10:00"):
        enquiry("ada@example.com")
        enquiry("grace@example.com")
        enquiry("grace@example.com")
        subscriber("kept@example.com", news)
    with at("2027-03-02 10:00"):
        before = (Enquiry.objects.count(), Contact.objects.count(), AuditEntry.objects.count())
        out = io.StringIO()
        call_command("retention", "run", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "dry run, nothing was changed" in text
    assert "Enquiries                          would remove 3" in text
    assert "Newsletter subscriptions           would remove 0" in text
    assert "Website visit statistics           would remove 0" in text
    assert "Contacts left with nothing         would remove 2" in text
    assert (Enquiry.objects.count(), Contact.objects.count(), AuditEntry.objects.count()) == before


def test_the_dry_run_counts_the_contacts_a_real_run_erases(customer, lists):
    news, _ = lists
    with at("2026-03-01 10:00"):
        enquiry("peter@initech.example")  # also a support contact
        enquiry("ada@example.com")
        subscriber("ada@example.com", news)
    with at("2026-04-01 10:00"):
        do_unsubscribe(Contact.objects.get(email="ada@example.com"), news, source="unsubscribe")
    with at("2027-03-02 10:00"):
        dry = run_retention(dry_run=True)
        real = sweep()
    assert dry.counts == real.counts
    assert dry.contacts == real.contacts == 1


def test_every_run_writes_an_audit_entry_with_counts_per_kind_and_no_personal_data():
    with at("2026-03-01 10:00"):
        enquiry()
    with at("2027-03-02 10:00"):
        out = io.StringIO()
        call_command("retention", "run", stdout=out)
    entry = AuditEntry.objects.get(action="retention.run")
    assert entry.actor_label == "cli"
    assert entry.details["counts"] == {
        "enquiry": 1,
        "subscription": 0,
        "order": 0,
        "support_contact": 0,
        "page_view": 0,
        "email_event": 0,
        "journey_enrolment": 0,
    }
    assert entry.details["contacts"] == 1
    assert entry.details["skipped"] == {}
    assert "ada" not in json.dumps(entry.details).lower()
    assert "Enquiries                          removed 1" in out.getvalue()


def test_the_sweep_deletes_in_batches_of_ids_each_its_own_transaction():
    with at("2026-03-01 10:00"):
        for i in range(5):
            enquiry(f"person{i}@example.com")
    with at("2027-03-02 10:00"):
        result = sweep(batch_size=2)
    assert result.counts["enquiry"] == 5 and result.contacts == 5
    assert result.batches == 3


def test_a_sweep_killed_midway_leaves_what_it_removed_in_the_audit_log(monkeypatch):
    # A run stopped between batches (kill -9, a crash) never writes its "retention.run" entry;
    # the batches it committed erased records and people all the same, and the log must show
    # them: each batch writes its own entry in its own transaction.
    from tidings.rights import retention

    with at("2026-03-01 10:00"):
        for i in range(5):
            enquiry(f"person{i}@example.com")
    real, calls = retention.erase_people_left_with_nothing, []

    def crash_in_the_third_batch(ids):
        calls.append(ids)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies inside the batch's transaction
        return real(ids)

    monkeypatch.setattr(retention, "erase_people_left_with_nothing", crash_in_the_third_batch)
    with at("2027-03-02 10:00"), pytest.raises(KeyboardInterrupt):
        sweep(batch_size=2)

    batches = AuditEntry.objects.filter(action="retention.batch").order_by("pk")
    assert [(e.details["kind"], e.details["removed"], e.details["contacts"]) for e in batches] == [
        ("enquiry", 2, 2),
        ("enquiry", 2, 2),
    ]
    assert Enquiry.objects.count() == 1 and not AuditEntry.objects.filter(action="retention.run")

    monkeypatch.setattr(retention, "erase_people_left_with_nothing", real)
    with at("2027-03-02 10:05"):
        sweep(batch_size=2)  # the next run finishes the job, and says what it did
    assert Enquiry.objects.count() == 0
    removed = AuditEntry.objects.filter(action="retention.batch")
    assert sum(e.details["removed"] for e in removed) == 5
    assert AuditEntry.objects.get(action="retention.run").details["counts"]["enquiry"] == 1


def test_the_sweep_is_a_daily_job_of_the_worker():
    from tidings.lib.periodic import REGISTRY
    from tidings.rights.tasks import run_retention_sweep

    job = REGISTRY["rights.retention"]
    assert job.every == timedelta(days=1)
    assert job.task == "tidings.rights.tasks.run_retention_sweep"
    with at("2026-03-01 10:00"):
        enquiry()
    with at("2027-03-02 10:00"):
        summary = run_retention_sweep.call()
    assert summary["counts"]["enquiry"] == 1 and summary["contacts"] == 1
    assert AuditEntry.objects.get(action="retention.run").actor_label == "worker"


def test_the_policy_decides_the_period(tmp_path, settings):
    write_policy(
        tmp_path,
        settings,
        ('[retention.enquiry]\nkeep = "12 months"', '[retention.enquiry]\nkeep = "3 months"'),
    )
    with at("2026-03-01 10:00"):
        short = enquiry()
    with at("2026-06-01 10:00"):
        sweep()
    assert not exists(short)


def test_every_record_kind_of_the_registry_has_a_sweep_with_all_its_clocks():
    assert set(SWEEPS) == set(RECORD_KINDS)
    for kind, sweep_ in SWEEPS.items():
        if sweep_.model_label:
            assert set(sweep_.clocks) == set(RECORD_KINDS[kind].clocks), kind


def test_retention_runs_write_only_counts_when_nothing_expired():
    sweep()
    entry = AuditEntry.objects.get(action="retention.run")
    assert entry.details["counts"] == dict.fromkeys(
        [
            "enquiry",
            "subscription",
            "order",
            "support_contact",
            "email_event",
            "journey_enrolment",
            "page_view",
        ],
        0,
    )
    audit("unrelated")  # the log goes on


# --- the query and the rule never disagree ----------------------------------------------------
moments = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001 (hypothesis attaches the time zone)
    max_value=datetime(2028, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
durations = st.builds(
    Duration, st.integers(1, 30), st.sampled_from(["days", "weeks", "months", "years"])
)


@given(start=moments, duration=durations, offset=st.integers(-4 * 86400, 4 * 86400))
@hypothesis_settings(max_examples=examples(1000), deadline=None)
def test_the_ranges_hold_exactly_the_clocks_whose_period_is_over(start, duration, offset):
    # Around the expiry, where month ends make "now - period" wrong and out of order.
    now = duration.after(start) + timedelta(seconds=offset)
    expired = duration.after(start) <= now
    if monotone(duration, dated=False):
        assert (start <= latest_start(duration, now, dated=False)) == expired
    else:
        assert (start in expired_ranges(duration, now)) == expired
    day = start.date()
    expired_day = instant(duration.after(day)) <= now
    assert (day <= latest_start(duration, now, dated=True)) == expired_day


def test_months_after_a_datetime_do_not_keep_order_at_the_end_of_a_month():
    month = Duration(1, "months")
    now = datetime(2025, 2, 28, tzinfo=UTC)
    assert datetime(2025, 1, 31, tzinfo=UTC) in expired_ranges(month, now)
    assert datetime(2025, 1, 28, 0, 0, 1, tzinfo=UTC) not in expired_ranges(month, now)
    assert datetime(2025, 1, 27, 23, 59, tzinfo=UTC) in expired_ranges(month, now)


def _near(base: datetime, days: int = 3):
    return st.integers(-days * 86400, days * 86400).map(lambda s: base + timedelta(seconds=s))


def _check_agreement(kind: str, records, now: datetime) -> None:
    """The records the query finds expired are exactly those Policy.expires_at says."""
    queried = set(expired_records(kind, now).values_list("pk", flat=True))
    by_rule = {r.pk for r in records if is_expired(r, now)}
    assert queried == by_rule


maybe_dates = st.none() | st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))
enquiry_clocks = st.tuples(moments, st.none() | st.dates(date(2025, 1, 1), date(2029, 12, 31)))


@given(clocks=st.lists(enquiry_clocks, min_size=1, max_size=8), pick=st.integers(0, 7))
@hypothesis_settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_the_enquiry_query_agrees_with_the_policy_for_random_clocks(clocks, pick):
    contact, _ = do_create_contact({"name": "P", "email": "p@example.com"}, purpose="enquiry")
    with transaction.atomic():
        records = [
            Enquiry.objects.create(
                contact=contact, channel="email", message="", last_contact_at=last, kept_until=until
            )
            for last, until in clocks
        ]
        last, _ = clocks[pick % len(clocks)]
        base = last + relativedelta(months=12)
        for now in (base, base - timedelta(microseconds=1), base + timedelta(days=1)):
            _check_agreement("enquiry", records, now)
        transaction.set_rollback(True)


@given(
    ends=st.lists(maybe_dates, max_size=3),
    left=st.lists(maybe_dates, min_size=1, max_size=4),
    shift=st.integers(-3, 3),
)
@hypothesis_settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_the_support_contact_query_agrees_with_the_policy_for_random_clocks(ends, left, shift):
    with transaction.atomic():
        organisation = do_create_organisation(name="Initech")
        for end in ends:
            do_create_contract(organisation, start=date(2020, 1, 1), end=end)
        records = []
        for i, left_on in enumerate(left):
            record, _ = do_add_support_contact(
                {"name": "P", "email": f"p{i}@example.com", "company": "Initech"},
                organisation=organisation,
            )
            record.left_employer = left_on
            record.save(update_fields=["left_employer"])
            records.append(record)
        anchors = [d for d in [*ends, *left] if d] or [date(2026, 1, 1)]
        for anchor in anchors:
            now = instant(anchor + relativedelta(months=12) + timedelta(days=shift))
            _check_agreement("support_contact", records, now)
        transaction.set_rollback(True)


@given(
    subs=st.lists(st.tuples(st.none() | moments, st.booleans()), min_size=1, max_size=6),
    closed=st.none() | moments,
    now=moments,
)
@hypothesis_settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_the_subscription_query_agrees_with_the_policy_for_random_clocks(subs, closed, now):
    with transaction.atomic():
        open_list = MailingList.objects.create(name="Open", topic="product news")
        closed_list = MailingList.objects.create(name="Closed", topic="training", closed_at=closed)
        records = []
        for i, (unsubscribed_at, on_closed) in enumerate(subs):
            contact = Contact.objects.create(email=f"s{i}@example.com")
            records.append(
                Subscription.objects.create(
                    contact=contact,
                    mailing_list=closed_list if on_closed else open_list,
                    status="unsubscribed" if unsubscribed_at else "confirmed",
                    unsubscribed_at=unsubscribed_at,
                )
            )
        for moment in (now, *(u for u, _ in subs if u), *([closed] if closed else [])):
            _check_agreement("subscription", records, moment)
        transaction.set_rollback(True)


# Rules that combine clocks of both types, where adding months does not keep order.
def _month_end(year: int, month: int, day: int, seconds: int) -> datetime:
    start = datetime(year, month, 1, tzinfo=UTC)
    return start + relativedelta(day=day) + timedelta(seconds=seconds)


month_ends = st.builds(
    _month_end, st.integers(2025, 2026), st.integers(1, 12), st.integers(26, 31),
    st.integers(0, 86399),
)  # fmt: skip
# Two clocks at the end of the same month: where "1 month after" puts them out of order.
# Two clocks at the end of the same month (one followed by a shorter month, mostly): where "1
# month after" puts them out of order.
month_end_pairs = st.builds(
    lambda year, month, a, b: (_month_end(year, month, *a), _month_end(year, month, *b)),
    st.integers(2025, 2026),
    st.sampled_from([1, 1, 3, 5, 8, 10, 12]),
    st.tuples(st.integers(27, 31), st.integers(0, 86399)),
    st.tuples(st.integers(27, 31), st.integers(0, 86399)),
)
MIXED_RULES = {
    "enquiry first of": (
        'keep = "12 months"\nafter = "last_contact"',
        'keep = "1 month"\nafter = { first_of = ["created", "last_contact"] }',
    ),
    "enquiry last of": (
        'keep = "12 months"\nafter = "last_contact"',
        'keep = "1 month"\nafter = { last_of = ["created", "last_contact"] }',
    ),
    "support contact first of": (
        'keep = "12 months"\nafter = { first_of = ["contract_end", "left_employer"] }',
        'keep = "1 month"\nafter = { first_of = ["created", "contract_end", "left_employer"] }',
    ),
    "support contact last of": (
        'keep = "12 months"\nafter = { first_of = ["contract_end", "left_employer"] }',
        'keep = "1 month"\nafter = { last_of = ["created", "contract_end", "left_employer"] }',
    ),
}


@pytest.mark.parametrize("rule", MIXED_RULES)
@given(data=st.data())
@hypothesis_settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_rules_mixing_datetime_and_date_clocks_agree_with_the_policy(
    rule, data, tmp_path, settings
):
    write_policy(tmp_path, settings, MIXED_RULES[rule])
    kind = "enquiry" if rule.startswith("enquiry") else "support_contact"
    pairs = data.draw(st.lists(month_end_pairs, min_size=1, max_size=4))
    with transaction.atomic():
        records = []
        if kind == "enquiry":
            contact, _ = do_create_contact(
                {"name": "P", "email": "p@example.com"}, purpose="enquiry"
            )
            for created, last in pairs:
                records.append(
                    Enquiry.objects.create(
                        contact=contact,
                        channel="email",
                        message="",
                        created_at=created,
                        last_contact_at=last,
                    )
                )
            moments = [m for pair in pairs for m in pair]
        else:
            organisation = do_create_organisation(name="Initech")
            end = data.draw(st.none() | month_ends.map(lambda m: m.date()))
            do_create_contract(organisation, start=date(2020, 1, 1), end=end)
            for i, (created, left) in enumerate(pairs):
                record, _ = do_add_support_contact(
                    {"name": "P", "email": f"p{i}@example.com", "company": "Initech"},
                    organisation=organisation,
                )
                record.created_at = created
                record.left_employer = data.draw(st.none() | st.just(left.date()))
                record.save(update_fields=["created_at", "left_employer"])
                records.append(record)
            moments = [r.created_at for r in records] + [
                instant(d) for d in [end, *(r.left_employer for r in records)] if d
            ]
        for moment in moments:
            expires = moment + relativedelta(months=1)
            for now in (expires, expires - timedelta(seconds=1), expires + timedelta(seconds=1)):
                _check_agreement(kind, records, now)
        transaction.set_rollback(True)


def test_an_order_is_expired_exactly_six_years_after_it_was_placed():
    person = {"name": "Ada", "email": "ada@example.com", "company": "Analytical"}
    with at("2024-02-29 10:00"):
        order = do_create_order(person, organisation=None)
    assert expiry(order) == datetime(2030, 2, 28, 10, tzinfo=UTC)
    for now, expected in [
        (datetime(2030, 2, 28, 9, 59, 59, 999999, tzinfo=UTC), False),
        (datetime(2030, 2, 28, 10, tzinfo=UTC), True),
    ]:
        assert is_expired(order, now) is expected
        assert expired_records("order", now).filter(pk=order.pk).exists() is expected
    assert get_policy().is_legal_minimum("order")
    assert Order.objects.count() == 1 and SupportContact.objects.count() == 0


@pytest.mark.parametrize("keep", ["14 days", "1 month"])
def test_a_demo_booked_beyond_the_enquiry_rule_keeps_its_enquiry_until_a_period_after_it(
    keep, tmp_path, settings
):
    """A demo is contact: an enquiry (and its booking) is not swept before its booked demo, and
    the rule's period runs from the demo's end; a cancelled demo holds nothing."""
    from tests.booking.helpers import NOW, book, hosts
    from tidings.booking.actions import do_cancel_booking, free_slots
    from tidings.booking.models import Booking

    write_policy(
        tmp_path,
        settings,
        ('keep = "12 months"\nafter = "last_contact"', f'keep = "{keep}"\nafter = "last_contact"'),
    )
    hosts("hedy")
    with at(NOW.isoformat()):
        slots = free_slots()
        late = book(start=slots[-1].start)  # about four weeks ahead: past the rule's period
        cancelled = book(
            start=slots[0].start, person={"name": "Grace", "email": "grace@example.com"}
        )
        do_cancel_booking(cancelled, actor=None)
    assert late.start - NOW > timedelta(days=24)
    period = relativedelta(months=1) if keep == "1 month" else relativedelta(days=14)

    with at((NOW + period + timedelta(days=2)).isoformat()):
        result = sweep()
    assert exists(late.enquiry) and exists(late)  # the demo has not happened yet
    assert not exists(cancelled.enquiry)  # a cancelled demo keeps nothing
    assert result.counts["enquiry"] == 1
    status = retention_status(Enquiry.objects.get(pk=late.enquiry_id))
    assert status.expires_at == late.end + period

    with at((late.end + period - timedelta(minutes=1)).isoformat()):
        sweep()
    assert exists(late.enquiry)
    with at((late.end + period + timedelta(minutes=1)).isoformat()):
        sweep()
    assert not exists(late.enquiry) and not Booking.objects.filter(pk=late.pk).exists()
