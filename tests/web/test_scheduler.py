"""Periodic jobs run once per period however many workers check."""

from datetime import timedelta

import pytest
import time_machine
from django.tasks import task
from django_tasks_db.models import DBTaskResult

from tidings.lib import periodic
from tidings.web import scheduler

pytestmark = pytest.mark.django_db


@task
def tick() -> None:
    """A job for the test."""


@pytest.fixture
def hourly(monkeypatch):
    monkeypatch.setattr(periodic, "REGISTRY", {})
    periodic.register("test.tick", timedelta(hours=1), f"{__name__}.tick")


def test_a_due_job_is_enqueued_once_and_then_waits_for_its_period(hourly):
    with time_machine.travel("2026-11-25 10:00Z", tick=False):
        assert scheduler.run_due() == ["test.tick"]
        assert scheduler.run_due() == []  # a second worker checking at the same moment
    with time_machine.travel("2026-11-25 10:59Z", tick=False):
        assert scheduler.run_due() == []
    with time_machine.travel("2026-11-25 11:00Z", tick=False):
        assert scheduler.run_due() == ["test.tick"]
    assert DBTaskResult.objects.filter(task_path=f"{__name__}.tick").count() == 2


def test_a_shortened_period_applies_at_once_not_after_the_old_one(hourly):
    """The statistics' rollups went from hourly to every 5 minutes: an upgraded installation
    still waited for the run planned an hour ahead."""
    with time_machine.travel("2026-11-25 10:00Z", tick=False):
        assert scheduler.run_due() == ["test.tick"]
    periodic.register("test.tick", timedelta(minutes=5), f"{__name__}.tick")
    with time_machine.travel("2026-11-25 10:05Z", tick=False):
        assert scheduler.run_due() == ["test.tick"]
        assert scheduler.run_due() == []
    with time_machine.travel("2026-11-25 10:09Z", tick=False):
        assert scheduler.run_due() == []


def test_two_workers_racing_for_the_same_run_enqueue_it_once(hourly):
    from tidings.web.models import ScheduledJob

    with time_machine.travel("2026-11-25 10:00Z", tick=False):
        scheduler.run_due()
    with time_machine.travel("2026-11-25 11:00Z", tick=False):
        stale = ScheduledJob.objects.get(name="test.tick").next_run_at
        assert scheduler.run_due() == ["test.tick"]
        # the other worker read the row before our UPDATE: its conditional UPDATE changes nothing
        assert (
            ScheduledJob.objects.filter(name="test.tick", next_run_at=stale).update(
                last_run_at=None
            )
            == 0
        )
