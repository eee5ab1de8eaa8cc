"""The dashboard's bulk-sender checklist is a snapshot the worker retakes every five minutes:
the page never aggregates 30 days of deliveries itself while the snapshot is fresh, a sender's
domain check shows at once, and without a worker the page recounts after fifteen minutes."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import make_sender
from tidings.campaigns.deliverability import checks
from tidings.campaigns.deliverability.checklist import RED, take_checklist_snapshot
from tidings.campaigns.deliverability.health import FAIL, Check, DomainHealth
from tidings.campaigns.deliverability.senders import do_check_sender
from tidings.lib.periodic import REGISTRY

pytestmark = pytest.mark.django_db


def shown(client, key: str):
    checklist = client.get("/").context["bulk_checklist"]
    return next(i for i in checklist.items if i.key == key)


def test_the_dashboard_shows_the_snapshot_until_the_worker_retakes_it(owner_client, settings):
    settings.TIDINGS_BASE_URL = "http://news.example.co.uk"
    take_checklist_snapshot.call()
    assert shown(owner_client, "one_click").status == RED
    settings.TIDINGS_BASE_URL = "https://news.example.co.uk"
    assert shown(owner_client, "one_click").status == RED  # still the snapshot
    take_checklist_snapshot.call()
    assert shown(owner_client, "one_click").status == "green"


def test_without_a_worker_the_page_recounts_after_fifteen_minutes(owner_client, settings):
    settings.TIDINGS_BASE_URL = "http://news.example.co.uk"
    take_checklist_snapshot.call()
    settings.TIDINGS_BASE_URL = "https://news.example.co.uk"
    with time_machine.travel(timezone.now() + timedelta(minutes=14)):
        assert shown(owner_client, "one_click").status == RED
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert shown(owner_client, "one_click").status == "green"


def test_a_senders_domain_check_shows_on_the_dashboard_at_once(owner_client, monkeypatch):
    sender = make_sender()
    take_checklist_snapshot.call()
    failing = DomainHealth(
        sender.domain,
        sender.dkim_selector,
        checks=[Check("dmarc", "DMARC", FAIL, required=True, detail="no record")],
    )
    monkeypatch.setattr(checks, "check_domain", lambda *args, **kwargs: failing)
    do_check_sender(sender)
    item = shown(owner_client, "authentication")
    assert item.status == RED
    assert item.rows == [(sender.domain, "fails: DMARC", RED)]


def test_the_worker_retakes_the_checklist_every_five_minutes():
    job = REGISTRY["campaigns.bulk-checklist"]
    assert job.every == timedelta(minutes=5)
    assert job.task.endswith("checklist.take_checklist_snapshot")
