"""Support that follows the contract: business hours, first-response targets and breaches,
held requests accepted or declined, and the licence report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.audience.public_helpers import reset
from tests.hypothesis_profiles import examples
from tidings.crm.actions import do_add_support_contact, do_create_support_request
from tidings.crm.business_hours import BadHours, parse
from tidings.crm.models import OperatorNotification, SupportRequest
from tidings.crm.notifications import send_reminders
from tidings.crm.support import do_accept_request, licence_report, response_clock

from .helpers import customer, operator

LONDON = ZoneInfo("Europe/London")
HOURS = parse("mon-fri 09:00-17:30", "Europe/London", ["2026-04-03"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


# --- business hours ---------------------------------------------------------------------------
def test_business_hours_skip_nights_weekends_and_closed_days():
    # Thursday 2 April 2026, 16:30; Friday 3 April (Good Friday) is closed.
    assert HOURS.add(at("2026-04-02 16:30"), 4) == at("2026-04-06 12:00")
    assert HOURS.add(at("2026-04-04 11:00"), 1) == at("2026-04-06 10:00")  # from a Saturday
    assert HOURS.between(at("2026-04-02 16:30"), at("2026-04-06 12:00")) == timedelta(hours=4)


def test_a_day_when_the_clocks_change_has_its_full_hours():
    # 29 March 2026 is a Sunday; Monday 30 March is the first day of summer time at work.
    spring = parse("mon-sun 09:00-17:30", "Europe/London")
    assert spring.between(at("2026-03-29 00:00"), at("2026-03-30 00:00")) == timedelta(hours=8.5)


@pytest.mark.parametrize(
    "spec",
    ["weekdays 9-5", "mon-fri 17:00-09:00", "fri-mon 09:00-17:00", "", "mon-fri 25:00-26:00"],
)
def test_hours_that_cannot_be_read_are_refused(spec):
    with pytest.raises(BadHours):
        parse(spec, "Europe/London")


@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2027, 1, 1),  # noqa: DTZ001
    ),
    hours=st.integers(min_value=1, max_value=200),
)
@hsettings(max_examples=examples(60), deadline=None)
def test_adding_business_hours_then_measuring_them_gives_them_back(start, hours):
    begin = start.replace(tzinfo=UTC)
    assert HOURS.between(begin, HOURS.add(begin, hours)) == timedelta(hours=hours)


# --- first responses --------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_queue_shows_time_left_then_the_breach_and_reminds_once(settings):
    reset()
    settings.TIME_ZONE = "Europe/London"
    ada = operator("ada")
    _, _, peter = customer(first_response_hours=2)
    with time_machine.travel(at("2026-03-10 16:00"), tick=False):
        request = do_create_support_request(peter, subject="Down", actor=ada)
    assert request.response_due_at == at("2026-03-11 09:30")  # 1.5 h today, 0.5 h tomorrow
    with time_machine.travel(at("2026-03-11 09:00"), tick=False):
        assert response_clock(request).text.startswith("0 h 30 min left")
        request.owner = ada
        SupportRequest.objects.filter(pk=request.pk).update(owner=ada)
        assert send_reminders() == 1  # due within the hour
    with time_machine.travel(at("2026-03-11 11:00"), tick=False):
        clock = response_clock(request)
        assert clock.breached and clock.text.startswith("Overdue by 1 h 30 min")
        assert send_reminders() == 1 and send_reminders() == 0
    assert list(OperatorNotification.objects.filter(user=ada).values_list("event", flat=True)) == [
        "response_due",
        "response_late",
    ]


@pytest.mark.django_db
def test_a_held_request_accepted_starts_its_clock_then(settings):
    reset()
    ada = operator("ada")
    initech, contract, _ = customer(first_response_hours=8)
    lumbergh, _ = do_add_support_contact(
        {"name": "Bill Lumbergh", "email": "bill@initech.example", "company": "Initech"},
        organisation=initech,
    )
    lumbergh.left_employer = date(2026, 1, 1)
    lumbergh.save(update_fields=["left_employer"])
    with time_machine.travel(at("2026-03-10 10:00"), tick=False):
        held = do_create_support_request(lumbergh, subject="Hi", check_contract=True)
    assert held.status == "held" and held.response_due_at is None
    with time_machine.travel(at("2026-03-12 10:00"), tick=False):
        do_accept_request(held, actor=ada)
    held.refresh_from_db()
    assert (held.status, held.contract) == ("new", contract)
    assert held.response_due_at == at("2026-03-13 09:30")  # 7.5 h that day, then 0.5 h


# --- the licence report -----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_licence_report_counts_named_users_against_the_licence_with_who_left_when(client):
    reset()
    with time_machine.travel("2025-02-01 10:00Z", tick=False):
        initech, contract, _ = customer(licensed_users=2)
        people = [
            do_add_support_contact(
                {"name": name, "email": f"{name.lower()}@initech.example", "company": "Initech"},
                organisation=initech,
            )[0]
            for name in ("Milton", "Samir")
        ]
    people[0].left_employer = date(2025, 6, 30)
    people[0].save(update_fields=["left_employer"])
    report = licence_report(contract, on=date(2025, 3, 1))
    assert (report.named, report.over_by) == (3, 1)
    later = licence_report(contract, on=date(2025, 7, 1))
    assert (later.named, later.over_by) == (2, 0)
    assert [(u.name, u.left) for u in later.users] == [
        ("Milton", date(2025, 6, 30)),
        ("Peter Gibbons", None),
        ("Samir", None),
    ]
    client.force_login(operator("ada"))
    response = client.get(reverse("crm:contract-licence", args=[contract.pk]), {"format": "csv"})
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == "contract,name,email,added,left,named user on the report's day"
    assert "C-1,Milton,milton@initech.example,2025-02-01,2025-06-30,no" in lines
    page = client.get(reverse("crm:contract-licence", args=[contract.pk])).text
    assert "2 named user(s) of 2 licensed." in page


@pytest.mark.django_db
def test_the_licence_report_downloads_whatever_the_contract_reference_holds(client):
    # The reference is the operator's text, and the file is named after it: a line break in it
    # was a 500, and a quote let it add parameters of its own to the download's header.
    from email.message import Message

    reset()
    _, contract, _ = customer(licensed_users=2)
    contract.reference = 'ACME "gold"; filename=evil.html;\r\nX'
    contract.save(update_fields=["reference"])
    client.force_login(operator("ada"))

    response = client.get(reverse("crm:contract-licence", args=[contract.pk]), {"format": "csv"})

    assert response.status_code == 200
    header = Message()
    header["Content-Disposition"] = response["Content-Disposition"]
    name = header.get_filename()
    assert name.startswith('licence-ACME "gold"; filename=evil.html;') and name.endswith(".csv")
