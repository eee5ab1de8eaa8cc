"""Slot computation (booking/slots.py): pure, with the clock given, across DST changes."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import time_machine

from tidings.booking.slots import Busy, Rules, by_day, free_slots, parse_windows

LONDON = ZoneInfo("Europe/London")
WEEKDAYS_9_TO_5 = {d: [(time(9), time(17))] for d in range(5)}


def rules(**overrides) -> Rules:
    values = {
        "zone": LONDON,
        "weekly": WEEKDAYS_9_TO_5,
        "slot": timedelta(minutes=45),
        "buffer": timedelta(minutes=15),
        "notice": timedelta(hours=0),
        "horizon_days": 14,
        "per_day_limit": 10,
    }
    return Rules(**(values | overrides))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def starts_on(slots, day: date, zone=LONDON) -> list[str]:
    return [
        s.start.astimezone(zone).strftime("%H:%M")
        for s in slots
        if s.start.astimezone(zone).date() == day
    ]


def test_a_working_day_offers_a_slot_every_hour_of_slot_length_plus_buffer():
    now = utc(2026, 11, 23, 0, 0)  # a Monday
    slots = free_slots(rules(), [1], [], now)
    assert starts_on(slots, date(2026, 11, 23)) == [
        "09:00",
        "10:00",
        "11:00",
        "12:00",
        "13:00",
        "14:00",
        "15:00",
        "16:00",
    ]
    assert all(s.end - s.start == timedelta(minutes=45) for s in slots)


def test_weekends_and_blocked_dates_offer_nothing():
    now = utc(2026, 11, 23, 0, 0)
    slots = free_slots(rules(blocked=frozenset({date(2026, 11, 24)})), [1], [], now)
    assert starts_on(slots, date(2026, 11, 24)) == []  # blocked
    assert starts_on(slots, date(2026, 11, 28)) == []  # Saturday
    assert starts_on(slots, date(2026, 11, 25))


def test_minimum_notice_and_horizon_bound_what_is_offered():
    now = utc(2026, 11, 23, 10, 30)
    slots = free_slots(rules(notice=timedelta(hours=2), horizon_days=3), [1], [], now)
    assert slots[0].start == utc(2026, 11, 23, 13, 0)  # 12:00 is only 1.5 h away
    assert slots[-1].start.date() == date(2026, 11, 26)  # three days ahead, no further


def test_a_meeting_blocks_its_slot_and_the_buffer_around_it():
    now = utc(2026, 11, 23, 0, 0)
    busy = [Busy(1, utc(2026, 11, 23, 10, 30), utc(2026, 11, 23, 11, 15))]  # booked by hand
    slots = free_slots(rules(), [1], busy, now)
    # 10:00-10:45 overlaps; 11:00 starts within the 15-minute buffer after 11:15; 12:00 is fine.
    assert starts_on(slots, date(2026, 11, 23))[:3] == ["09:00", "12:00", "13:00"]


def test_a_slot_stays_free_while_another_host_can_take_it():
    now = utc(2026, 11, 23, 0, 0)
    busy = [Busy(1, utc(2026, 11, 23, 9, 0), utc(2026, 11, 23, 9, 45))]
    first = free_slots(rules(), [1, 2], busy, now)[0]
    assert first.start == utc(2026, 11, 23, 9, 0) and first.hosts == (2,)


def test_the_per_day_limit_closes_a_hosts_day():
    now = utc(2026, 11, 23, 0, 0)
    busy = [
        Busy(1, utc(2026, 11, 23, 9, 0), utc(2026, 11, 23, 9, 45)),
        Busy(1, utc(2026, 11, 23, 14, 0), utc(2026, 11, 23, 14, 45)),
    ]
    slots = free_slots(rules(per_day_limit=2), [1], busy, now)
    assert starts_on(slots, date(2026, 11, 23)) == []
    assert starts_on(slots, date(2026, 11, 24))


def test_hours_stay_at_local_time_across_the_spring_change_in_london():
    # The clocks go forward on Sunday 29 March 2026: 09:00 is 09:00 UTC on the Friday before,
    # 08:00 UTC on the Monday after.
    with time_machine.travel(utc(2026, 3, 26, 12, 0), tick=False):
        now = datetime.now(UTC)
        slots = free_slots(rules(), [1], [], now)
    friday = [s for s in slots if s.start.astimezone(LONDON).date() == date(2026, 3, 27)]
    monday = [s for s in slots if s.start.astimezone(LONDON).date() == date(2026, 3, 30)]
    assert friday[0].start == utc(2026, 3, 27, 9, 0)
    assert monday[0].start == utc(2026, 3, 30, 8, 0)
    assert starts_on(slots, date(2026, 3, 30))[0] == "09:00"


def test_hours_stay_at_local_time_across_the_autumn_change_in_london():
    with time_machine.travel(utc(2026, 10, 22, 12, 0), tick=False):
        slots = free_slots(rules(), [1], [], datetime.now(UTC))
    assert next(s.start for s in slots if s.start.date() == date(2026, 10, 23)) == utc(
        2026, 10, 23, 8, 0
    )
    assert next(s.start for s in slots if s.start.date() == date(2026, 10, 26)) == utc(
        2026, 10, 26, 9, 0
    )


def test_a_time_skipped_by_the_change_is_not_offered_and_a_repeated_one_only_once():
    night = {6: [(time(0, 30), time(3, 0))]}  # Sunday nights
    spring = free_slots(
        rules(weekly=night, slot=timedelta(minutes=30), buffer=timedelta(0), horizon_days=7),
        [1],
        [],
        utc(2026, 3, 23, 0, 0),
    )
    # 01:00-01:59 does not exist on 29 March (the clocks jump from 01:00 GMT to 02:00 BST).
    assert starts_on(spring, date(2026, 3, 29)) == ["00:30", "02:00", "02:30"]
    autumn = free_slots(
        rules(weekly=night, slot=timedelta(minutes=30), buffer=timedelta(0), horizon_days=7),
        [1],
        [],
        utc(2026, 10, 19, 0, 0),
    )
    starts = [s.start for s in autumn]
    assert len(starts) == len(set(starts))
    assert starts_on(autumn, date(2026, 10, 25)).count("01:00") == 1


def test_a_visitor_in_another_timezone_sees_the_same_slots_on_their_own_clock():
    now = utc(2026, 11, 23, 0, 0)
    slots = free_slots(rules(), [1], [], now)
    tokyo = ZoneInfo("Asia/Tokyo")
    days = by_day(slots, tokyo)
    # 09:00 in London on Monday is 18:00 in Tokyo; 15:00 and 16:00 London fall on Tuesday there.
    monday_tokyo = dict(days)[date(2026, 11, 23)]
    assert [s.start.astimezone(tokyo).strftime("%H:%M") for s in monday_tokyo][:2] == [
        "18:00",
        "19:00",
    ]
    assert utc(2026, 11, 23, 15, 0) in [s.start for s in dict(days)[date(2026, 11, 24)]]


def test_hours_are_parsed_with_clear_errors():
    assert parse_windows("13:30-17:00, 09:00-12:30") == [
        (time(9), time(12, 30)),
        (time(13, 30), time(17)),
    ]
    for text, message in [
        ("9-5", "write hours"),
        ("17:00-09:00", "after the start"),
        ("09:00-12:00, 11:00-13:00", "overlap"),
    ]:
        try:
            parse_windows(text)
        except ValueError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(text)
