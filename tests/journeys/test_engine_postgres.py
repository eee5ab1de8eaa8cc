"""Several workers sharing PostgreSQL: claims never overlap (SKIP LOCKED); each step runs once."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection

from tests.journeys.helpers import make_list, subscriber, welcome
from tidings.campaigns.models import OutgoingMessage
from tidings.journeys import engine
from tidings.journeys.models import EnrolmentStep

pytestmark = [
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="needs PostgreSQL (DATABASE_URL)",
    ),
    pytest.mark.django_db(transaction=True),
]


def test_four_workers_advance_everyone_once():
    journey = welcome()
    news = make_list()
    for n in range(60):
        subscriber(f"Reader {n}", news)  # confirmed: enrolled by the trigger (no test transaction)
    assert journey.enrolments.count() == 60
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            while engine.advance_due(limit=3, worker=name):
                pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert OutgoingMessage.objects.filter(kind__startswith="journey:").count() == 60
    assert EnrolmentStep.objects.filter(outcome="sent").count() == 60
    assert len(set(EnrolmentStep.objects.values_list("enrolment_id", "seq"))) == 120
