"""Visitor hashes rotate daily, and yesterday's can never be recomputed."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from tidings.analytics import salts
from tidings.analytics.models import Salt
from tidings.lib import periodic

pytestmark = pytest.mark.django_db

VISITOR = ("example.co.uk", "203.0.113.7", "Mozilla/5.0 Firefox/128.0")


@pytest.fixture(autouse=True)
def _fresh(fresh_salt):
    pass


def test_within_a_day_a_visitor_has_one_hash_and_another_visitor_another():
    with time_machine.travel("2026-11-25 09:00Z", tick=False):
        morning = salts.visitor_hash(*VISITOR)
    with time_machine.travel("2026-11-25 23:59Z", tick=False):
        assert salts.visitor_hash(*VISITOR) == morning
        assert salts.visitor_hash("example.co.uk", "203.0.113.8", VISITOR[2]) != morning


def test_yesterdays_hash_cannot_be_reproduced_once_the_day_is_over():
    with time_machine.travel("2026-11-25 18:00Z", tick=False):
        yesterday = salts.visitor_hash(*VISITOR)
        assert Salt.objects.count() == 1
    with time_machine.travel("2026-11-26 00:00:30Z", tick=False):
        assert salts.delete_past_salts() == 1
        assert not Salt.objects.filter(day="2026-11-25").exists()
        today = salts.visitor_hash(*VISITOR)
    assert today != yesterday
    # Not by a process that still had yesterday's salt in memory, nor by one starting afresh,
    # nor by travelling back: the salt is gone, and a new one is random.
    salts.forget_cached_salt()
    with time_machine.travel("2026-11-25 18:00Z", tick=False):
        assert salts.visitor_hash(*VISITOR) != yesterday


def test_a_process_never_hashes_with_a_salt_whose_day_is_over():
    with time_machine.travel("2026-11-25 23:59:59Z", tick=False):
        late = salts.visitor_hash(*VISITOR)
    with time_machine.travel("2026-11-26 00:00:01Z", tick=False):
        # No sweep yet: this process still notices the date changed and uses a new salt.
        assert salts.visitor_hash(*VISITOR) != late
        assert set(Salt.objects.values_list("day", flat=True).order_by("day")) == {
            salts.local_day() - timedelta(days=1),
            salts.local_day(),
        }


def test_the_salt_sweep_is_scheduled_every_few_minutes():
    job = periodic.REGISTRY["analytics.salts"]
    assert job.every <= timedelta(minutes=5)
    assert job.task == "tidings.analytics.tasks.delete_past_salts"
    with time_machine.travel("2026-11-25 12:00Z", tick=False):
        salts.visitor_hash(*VISITOR)
    with time_machine.travel("2026-11-26 00:01Z", tick=False):
        from tidings.analytics.tasks import delete_past_salts

        assert delete_past_salts.call() == {"salts_deleted": 1}
    assert not Salt.objects.exists()


def test_a_salt_lasts_the_controllers_day_not_utcs(settings):
    settings.TIME_ZONE = "America/New_York"
    with time_machine.travel("2026-11-24 23:30Z", tick=False):  # 18:30 on the 24th in New York
        evening = salts.visitor_hash(*VISITOR)
    with time_machine.travel("2026-11-25 04:30Z", tick=False):  # 23:30, still the 24th there
        assert salts.visitor_hash(*VISITOR) == evening
        assert salts.delete_past_salts() == 0
    with time_machine.travel("2026-11-25 05:01Z", tick=False):  # the 24th is over in New York
        assert salts.delete_past_salts() == 1
        assert salts.visitor_hash(*VISITOR) != evening
