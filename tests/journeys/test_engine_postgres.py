"""Several workers sharing PostgreSQL: claims never overlap (SKIP LOCKED); each step runs once."""

from __future__ import annotations

import threading
import time

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


def test_an_unsubscribe_while_a_worker_runs_the_persons_step_still_takes_them_out(monkeypatch):
    """A worker holds Ann's enrolment (its batch transaction) when she leaves: her exit waits
    for the batch and then closes the enrolment as the batch left it (and skips the mail it
    queued), rather than finding it moved on and doing nothing."""
    from tidings.journeys.actions import do_exit_contact
    from tidings.journeys.models import Enrolment

    welcome()
    ann = subscriber("Ann Example", make_list())  # enrolled by the trigger
    in_batch, leave = threading.Event(), threading.Event()
    write = engine._write

    def slow_write(items, worker):
        write(items, worker)
        in_batch.set()  # the step is written; the transaction is still open
        leave.wait(timeout=10)
        time.sleep(0.5)  # the exit below is waiting for this transaction by now

    monkeypatch.setattr(engine, "_write", slow_write)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            engine.advance_due()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    assert in_batch.wait(timeout=30)
    leave.set()
    left = do_exit_contact(ann.pk, "unsubscribed")
    worker.join(timeout=30)
    assert errors == []
    assert left == 1
    enrolment = Enrolment.objects.get(contact=ann)
    assert (enrolment.state, enrolment.exit_reason) == ("exited", "unsubscribed")
    mail = OutgoingMessage.objects.get(contact=ann)
    assert mail.status == "skipped"
