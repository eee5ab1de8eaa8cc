"""Retention arithmetic: periods, clocks, first_of / last_of, "while subscribed".

Mostly property-based (hypothesis).
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tidings.policy import load_policy, parse_policy
from tidings.policy.commands import EXAMPLE_POLICY
from tidings.policy.durations import Duration, first_of, last_of

POLICY = load_policy(EXAMPLE_POLICY)
EXAMPLE = EXAMPLE_POLICY.read_text(encoding="utf-8")

dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))
# hypothesis takes naive bounds and attaches the time zone itself
moments = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001
    max_value=datetime(2090, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
maybe_dates = st.none() | dates
durations = st.builds(
    Duration, st.integers(1, 120), st.sampled_from(["days", "weeks", "months", "years"])
)


def test_periods_read_as_people_write_them():
    assert Duration.parse("12 months") == Duration(12, "months")
    assert Duration.parse("1 year") == Duration(1, "years")
    assert Duration.parse(" 30  Days ") == Duration(30, "days")
    assert str(Duration(1, "years")) == "1 year"
    assert str(Duration(25, "months")) == "25 months"
    for bad in ("", "months", "12", "-1 months", "0 days", "12 fortnights", "1.5 years"):
        with pytest.raises(ValueError):
            Duration.parse(bad)


def test_a_month_after_the_31st_is_the_end_of_the_next_month():
    assert Duration(1, "months").after(date(2027, 1, 31)) == date(2027, 2, 28)
    assert Duration(1, "months").after(date(2028, 1, 31)) == date(2028, 2, 29)
    assert Duration(1, "years").after(date(2028, 2, 29)) == date(2029, 2, 28)


def test_an_enquiry_expires_twelve_months_after_last_contact():
    assert POLICY.expires_at("enquiry", {"last_contact": date(2026, 3, 1)}) == date(2027, 3, 1)
    assert POLICY.expires_at("enquiry", {"last_contact": None}) is None
    assert POLICY.expires_at("enquiry", {}) is None


def test_a_support_contact_expires_after_the_first_of_contract_end_or_leaving():
    left = date(2026, 5, 10)
    contract_end = date(2027, 1, 31)
    assert POLICY.expires_at(
        "support_contact", {"contract_end": contract_end, "left_employer": left}
    ) == date(2027, 5, 10)
    assert POLICY.expires_at(
        "support_contact", {"contract_end": contract_end, "left_employer": None}
    ) == date(2028, 1, 31)
    assert (
        POLICY.expires_at("support_contact", {"contract_end": None, "left_employer": None}) is None
    )


def test_a_subscription_lasts_while_subscribed():
    assert POLICY.expires_at("subscription", {"unsubscribed": None, "list_closed": None}) is None
    gone = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    assert POLICY.expires_at("subscription", {"unsubscribed": gone, "list_closed": None}) == gone


def test_orders_are_a_legal_minimum_of_six_years():
    assert POLICY.is_legal_minimum("order")
    assert POLICY.expires_at("order", {"created": date(2020, 2, 29)}) == date(2026, 2, 28)


def test_last_of_waits_for_every_clock():
    policy = parse_policy(
        EXAMPLE.replace(
            'after = { first_of = ["contract_end", "left_employer"] }',
            'after = { last_of = ["contract_end", "left_employer"] }',
        )
    )
    both = {"contract_end": date(2027, 1, 1), "left_employer": date(2026, 1, 1)}
    assert policy.expires_at("support_contact", both) == date(2028, 1, 1)
    assert policy.expires_at("support_contact", {**both, "left_employer": None}) is None


@given(durations, dates)
def test_expiry_is_never_before_the_clock_and_never_absurdly_after(duration, start):
    try:
        end = duration.after(start)
    except OverflowError:
        return
    days = {"days": 1, "weeks": 7, "months": 28, "years": 365}[duration.unit]
    most = {"days": 1, "weeks": 7, "months": 31, "years": 366}[duration.unit]
    assert days * duration.amount <= (end - start).days <= most * duration.amount


@given(durations, dates, dates)
def test_a_later_clock_never_gives_an_earlier_expiry(duration, a, b):
    early, late = sorted([a, b])
    assert duration.after(early) <= duration.after(late)


@given(st.lists(maybe_dates, min_size=1, max_size=5))
def test_first_of_is_the_earliest_started_clock(clocks):
    started = [c for c in clocks if c is not None]
    assert first_of(clocks) == (min(started) if started else None)


@given(st.lists(maybe_dates, min_size=1, max_size=5))
def test_last_of_is_the_latest_clock_once_all_have_started(clocks):
    expected = None if None in clocks else max(clocks)
    assert last_of(clocks) == expected


@given(maybe_dates, maybe_dates)
def test_support_contact_expiry_is_twelve_months_after_the_first_clock(contract_end, left):
    expiry = POLICY.expires_at(
        "support_contact", {"contract_end": contract_end, "left_employer": left}
    )
    started = [d for d in (contract_end, left) if d is not None]
    if not started:
        assert expiry is None
    else:
        assert expiry == Duration(12, "months").after(min(started))
        assert all(expiry <= Duration(12, "months").after(d) for d in started)


@given(moments)
def test_an_enquiry_kept_one_day_less_than_a_year_has_not_expired(last_contact):
    expiry = POLICY.expires_at("enquiry", {"last_contact": last_contact})
    assert expiry > last_contact + timedelta(days=364)
    assert expiry <= last_contact + timedelta(days=366)


@given(dates, moments)
def test_dates_and_datetimes_mix_in_first_of(day, moment):
    # a date counts from its midnight UTC, so mixed clocks still pick the earlier one
    picked = first_of([day, moment])
    as_dt = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert picked == (day if as_dt <= moment else moment)
