"""The audit log viewer: filter by action, object, actor and dates; page through; export CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
import time_machine

from tests.operators import make_operator
from tidings.lib.audit import audit
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer_client(client):
    client.force_login(make_operator("pat", "privacy_officer"))
    return client


@pytest.fixture
def entries():
    pat = make_operator("sam", "owner")
    with time_machine.travel(datetime(2026, 1, 10, 9, tzinfo=UTC), tick=False):
        audit("suppression.added", reason="manual", count=1, actor=pat)
    with time_machine.travel(datetime(2026, 2, 10, 9, tzinfo=UTC), tick=False):
        audit("contact.erased", counts={"enquiries": 1}, actor_label="rights form")
        AuditEntry.objects.create(
            action="rights.request_received", object_type="rights.rightsrequest", object_id="7"
        )
    with time_machine.travel(datetime(2026, 3, 10, 9, tzinfo=UTC), tick=False):
        audit("retention.run", counts={"enquiry": 3}, actor_label="worker")


def actions_on(page: str) -> list[str]:
    names = ["suppression.added", "contact.erased", "rights.request_received", "retention.run"]
    return [name for name in names if f"<td>{name}</td>" in page]


def test_the_log_shows_every_entry_newest_first(officer_client, entries):
    page = officer_client.get("/rights/audit/").content.decode()

    assert (
        page.index("retention.run") < page.index("contact.erased") < page.index("suppression.added")
    )
    assert "4 entries" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "contact."}, ["contact.erased"]),
        ({"object_type": "rights.rightsrequest", "object_id": "7"}, ["rights.request_received"]),
        ({"actor": "sam"}, ["suppression.added"]),
        ({"actor": "worker"}, ["retention.run"]),
        (
            {"since": "2026-02-01", "until": "2026-02-28"},
            ["contact.erased", "rights.request_received"],
        ),
        ({"until": "2026-01-10"}, ["suppression.added"]),
    ],
)
def test_the_log_filters(officer_client, entries, query, expected):
    page = officer_client.get("/rights/audit/", query).content.decode()

    assert sorted(actions_on(page)) == sorted(expected)


def test_a_start_date_after_the_end_date_is_a_form_error(officer_client, entries):
    page = officer_client.get(
        "/rights/audit/", {"since": "2026-03-01", "until": "2026-01-01"}
    ).content.decode()

    assert "The start date is after the end date." in page
    assert actions_on(page) == []


def test_the_log_pages_through_long_histories(officer_client):
    for n in range(105):
        AuditEntry.objects.create(action="test.entry", object_id=str(n))

    first = officer_client.get("/rights/audit/").content.decode()
    second = officer_client.get("/rights/audit/", {"page": 2}).content.decode()

    assert first.count("<td>test.entry</td>") == 100 and "Older" in first
    assert second.count("<td>test.entry</td>") == 5 and "Newer" in second


def test_the_filtered_log_downloads_as_csv(officer_client, entries):
    response = officer_client.get("/rights/audit/", {"action": "contact.", "format": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["id", "at", "action", "actor", "object_type", "object_id", "details"]
    assert [r[2] for r in rows[1:]] == ["contact.erased"]
    assert rows[1][3] == "rights form" and '"enquiries": 1' in rows[1][6]


def test_the_nav_links_to_the_queue_and_the_log(officer_client):
    page = officer_client.get("/rights/queue/").content.decode()

    assert 'href="/rights/queue/"' in page and 'href="/rights/audit/"' in page


def test_the_dates_of_the_filter_are_days_in_the_controllers_time_zone(officer_client):
    # 00:30 on 1 July in London (BST) is 23:30 on 30 June in UTC: the log shows it on 1 July,
    # so a filter from 1 July must find it, and one up to 30 June must not.
    with time_machine.travel(datetime(2026, 6, 30, 23, 30, tzinfo=UTC), tick=False):
        audit("retention.run", counts={}, actor_label="worker")

    july = officer_client.get("/rights/audit/", {"since": "2026-07-01"}).content.decode()
    june = officer_client.get("/rights/audit/", {"until": "2026-06-30"}).content.decode()

    assert "1 Jul 2026 00:30" in july and actions_on(july) == ["retention.run"]
    assert actions_on(june) == []
