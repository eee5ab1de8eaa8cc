"""The operator queue of rights requests: who may see it, due dates and their highlighting,
verifying, extending, fulfilling and refusing, and the near-due reminder."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache

from tests.operators import make_operator
from tests.rights.helpers import mails_to, plant_person
from tidings import signals
from tidings.audience.models import Contact
from tidings.lib.models import AuditEntry
from tidings.lib.periodic import REGISTRY
from tidings.rights.actions import (
    RightsError,
    do_create_rights_request,
    do_extend_rights_request,
    do_remind_near_due,
)
from tidings.rights.models import RightsRequest

pytestmark = pytest.mark.django_db

RECEIVED = datetime(2026, 3, 2, 10, tzinfo=UTC)  # due 2 April 2026


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


@pytest.fixture
def officer():
    return make_operator("pat", "privacy_officer")


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client


def received(kind: str = "access", email: str = "ada@example.com", at=RECEIVED) -> RightsRequest:
    with time_machine.travel(at, tick=False):
        return do_create_rights_request(kind, email)


PAGES = ["/rights/queue/", "/rights/queue/new", "/rights/audit/"]


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("privacy_officer", 200), ("editor", 403), ("analyst", 403)],
)
def test_only_privacy_officers_and_owners_see_the_privacy_pages(client, path, role, status):
    client.force_login(make_operator("someone", role))

    assert client.get(path).status_code == status


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(client):
    request = received()

    for path in [*PAGES, f"/rights/queue/{request.pk}/", f"/rights/queue/{request.pk}/package"]:
        response = client.get(path)
        assert response.status_code == 302 and "login" in response["Location"], path


def test_every_action_of_a_request_page_refuses_an_editor(client):
    request = received()
    client.force_login(make_operator("ed", "editor"))

    for action in ("verify", "start", "fulfil", "extend", "refuse", "rectify"):
        assert client.post(f"/rights/queue/{request.pk}/{action}").status_code == 403
    assert client.get(f"/rights/queue/{request.pk}/package").status_code == 403


def test_the_queue_lists_open_requests_soonest_due_first_and_marks_overdue_and_near_due(
    officer_client,
):
    overdue = received(at=datetime(2026, 2, 1, tzinfo=UTC))  # due 1 March
    near = received(at=datetime(2026, 3, 2, tzinfo=UTC))  # due 2 April
    later = received(at=datetime(2026, 3, 20, tzinfo=UTC))  # due 20 April

    with time_machine.travel(datetime(2026, 3, 28, 12, tzinfo=UTC), tick=False):
        page = officer_client.get("/rights/queue/").content.decode()

    assert page.index(f"#{overdue.pk}<") < page.index(f"#{near.pk}<") < page.index(f"#{later.pk}<")
    rows = page.split("<tr")
    (overdue_row,) = [r for r in rows if f"#{overdue.pk}<" in r]
    (near_row,) = [r for r in rows if f"#{near.pk}<" in r]
    (later_row,) = [r for r in rows if f"#{later.pk}<" in r]
    assert "rights-overdue" in overdue_row and "Overdue" in overdue_row
    assert "rights-near-due" in near_row and "Due soon" in near_row
    assert "rights-" not in later_row.split(">")[0]


def test_the_queue_page_makes_a_fixed_number_of_queries(officer_client, django_assert_num_queries):
    for n in range(5):
        received(email=f"person{n}@example.com")

    with django_assert_num_queries(5):  # session, user, groups, count, page
        officer_client.get("/rights/queue/")


def test_an_operator_records_a_request_received_by_phone_and_a_link_is_sent(
    officer_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = officer_client.post(
            "/rights/queue/new", {"kind": "erase", "email": "ada@example.com", "channel": "phone"}
        )

    request = RightsRequest.objects.get()
    assert response["Location"] == f"/rights/queue/{request.pk}/"
    assert request.state == "received" and request.channel == "phone"
    assert len(mails_to("ada@example.com")) == 1


def test_an_operator_verifies_by_hand_and_fulfils(
    officer_client, django_capture_on_commit_callbacks
):
    ada = plant_person("ada")
    request = RightsRequest.objects.get()  # plant_person made an access request
    request.delete()
    request = do_create_rights_request("erase", "ada@example.com")

    officer_client.post(f"/rights/queue/{request.pk}/verify")
    request.refresh_from_db()
    assert request.state == "verified" and request.verified_by.username == "pat"
    with django_capture_on_commit_callbacks(execute=True):
        officer_client.post(f"/rights/queue/{request.pk}/fulfil")

    request.refresh_from_db()
    assert request.state == "completed"
    assert Contact.objects.get(pk=ada.contact.pk).phone == ""  # erased, order kept
    page = officer_client.get(f"/rights/queue/{request.pk}/").content.decode()
    assert "What we keep, and why" in page
    assert "rights.erase_fulfilled" in page


def test_fulfilling_an_unverified_request_is_refused_with_a_message(officer_client):
    request = received(kind="erase")

    response = officer_client.post(f"/rights/queue/{request.pk}/fulfil", follow=True)

    assert "must be verified first" in response.content.decode()
    request.refresh_from_db()
    assert request.state == "received"


def test_the_privacy_officer_downloads_the_package_of_a_verified_access_request(officer_client):
    plant_person("ada")
    request = RightsRequest.objects.get()

    assert officer_client.get(f"/rights/queue/{request.pk}/package").status_code == 303
    officer_client.post(f"/rights/queue/{request.pk}/verify")
    response = officer_client.get(f"/rights/queue/{request.pk}/package")

    assert response["Content-Type"] == "application/zip"
    entry = AuditEntry.objects.get(action="rights.package_downloaded")
    assert entry.actor.username == "pat"


def test_extending_sets_two_more_months_and_tells_the_person_why(
    officer_client, django_capture_on_commit_callbacks
):
    request = received()

    with (
        time_machine.travel(datetime(2026, 3, 20, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        officer_client.post(
            f"/rights/queue/{request.pk}/extend", {"reason": "Records on three systems."}
        )

    request.refresh_from_db()
    assert request.due_on == date(2026, 4, 2) and request.extended_to == date(2026, 6, 2)
    notice = mails_to("ada@example.com")[-1]
    assert "more time" in notice.subject
    assert "Records on three systems." in notice.body and "2026-06-02" in notice.body
    entry = AuditEntry.objects.get(action="rights.request_extended")
    assert "Records" not in str(entry.details)


def test_an_extension_needs_a_reason_and_comes_before_the_due_date():
    request = received()

    with pytest.raises(RightsError, match="needs a reason"):
        do_extend_rights_request(request, "  ", actor=None)
    with (
        time_machine.travel(datetime(2026, 4, 3, tzinfo=UTC), tick=False),
        pytest.raises(RightsError, match="before the due date"),
    ):
        do_extend_rights_request(request, "Complex", actor=None)


def test_refusing_tells_the_person_why_and_forgets_the_address(
    officer_client, django_capture_on_commit_callbacks
):
    request = received(kind="erase")

    with django_capture_on_commit_callbacks(execute=True):
        officer_client.post(
            f"/rights/queue/{request.pk}/refuse", {"reason": "Manifestly unfounded."}
        )

    request.refresh_from_db()
    assert request.state == "refused" and request.email == ""
    assert "Manifestly unfounded." in mails_to("ada@example.com")[-1].body


def test_a_refusal_without_a_reason_is_not_made(officer_client):
    request = received()

    response = officer_client.post(
        f"/rights/queue/{request.pk}/refuse", {"reason": ""}, follow=True
    )

    assert "Give a reason" in response.content.decode()
    request.refresh_from_db()
    assert request.state == "received"


# --- the near-due reminder --------------------------------------------------------------------
def test_a_reminder_goes_once_when_a_request_is_within_a_week_of_due(
    django_capture_on_commit_callbacks,
):
    make_operator("pat", "privacy_officer")
    make_operator("ed", "editor")
    request = received()  # due 2 April
    fired = []
    signals.rights_request_near_due.connect(
        lambda **kw: fired.append(kw), weak=False, dispatch_uid="test-listener"
    )
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert do_remind_near_due(date(2026, 3, 25)) == []  # 8 days before
            assert do_remind_near_due(date(2026, 3, 26)) == [request.pk]  # 7 days before
            assert do_remind_near_due(date(2026, 3, 27)) == []  # once
    finally:
        signals.rights_request_near_due.disconnect(dispatch_uid="test-listener")

    (reminder,) = mail.outbox
    assert reminder.to == ["pat@example.co.uk"]
    assert f"/rights/queue/{request.pk}/" in reminder.body
    assert "ada" not in reminder.body
    assert fired == [
        {
            "signal": signals.rights_request_near_due,
            "sender": RightsRequest,
            "request_id": request.pk,
            "kind": "access",
            "due": date(2026, 4, 2),
            "due_on": date(2026, 4, 2),
        }
    ]


def test_an_extended_request_gets_a_new_reminder_before_its_new_date(
    django_capture_on_commit_callbacks,
):
    make_operator("pat", "privacy_officer")
    request = received()
    with django_capture_on_commit_callbacks(execute=True):
        do_remind_near_due(date(2026, 3, 27))
    with time_machine.travel(datetime(2026, 3, 28, tzinfo=UTC), tick=False):
        do_extend_rights_request(request, "Complex", actor=None)

    assert do_remind_near_due(date(2026, 4, 10)) == []
    assert do_remind_near_due(date(2026, 5, 27)) == [request.pk]


def test_closed_requests_get_no_reminder():
    request = received(kind="erase")
    RightsRequest.objects.filter(pk=request.pk).update(state="completed")

    assert do_remind_near_due(date(2026, 4, 1)) == []


def test_the_reminder_is_a_scheduled_job():
    job = REGISTRY["rights.near-due"]

    assert job.every == timedelta(hours=1)
    assert job.task == "tidings.rights.tasks.remind_near_due_requests"


def test_every_operator_page_of_the_rights_app_needs_the_privacy_permission():
    from tidings.rights import public_urls, urls

    for pattern in urls.urlpatterns:
        assert getattr(pattern.callback, "operator_permission", None) == "privacy", pattern.name
    for pattern in public_urls.urlpatterns:  # public: explicitly no operator decorator
        assert not hasattr(pattern.callback, "operator_permission"), pattern.name
