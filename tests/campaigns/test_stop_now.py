"""A worker told twice to stop (`tidings worker`, README "Stopping the worker") stops at once
and hands back what its delivery engine claimed, even while a message hangs on the wire."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from tidings.audience.models import Contact
from tidings.campaigns.engine.run import DeliveryThread
from tidings.campaigns.mail import send_system_email
from tidings.campaigns.models import DeliveryWorker, OutgoingMessage
from tidings.campaigns.queue import register_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_second_signal_returns_the_claimed_rows_without_waiting_for_the_wire():
    ada = Contact.objects.create(email="ada@example.com", name="Ada")
    for _ in range(3):
        send_system_email(ada, "preferences_link", {"preferences_url": "https://x/p/t"})
    worker = register_worker()
    OutgoingMessage.objects.update(status="sending", leased_by=worker.pk)
    wire = threading.Event()

    class Stuck(DeliveryThread):
        def run(self):  # an engine whose SMTP peer never answers
            self.engine = SimpleNamespace(worker_id=worker.pk)
            wire.wait(30)

    sender = Stuck()
    sender.start()
    hurry = threading.Event()
    threading.Timer(0.3, hurry.set).start()  # the second SIGTERM

    sender.stop(hurry=hurry)
    # It returned while the engine was still stuck on the wire: it did not wait for it.
    still_on_the_wire = sender.is_alive()
    wire.set()

    assert still_on_the_wire
    assert set(OutgoingMessage.objects.values_list("status", "leased_by")) == {("queued", "")}
    assert DeliveryWorker.objects.get(pk=worker.pk).stopped_at is not None
