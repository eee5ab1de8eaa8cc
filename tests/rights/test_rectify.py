"""Rectification: the person (through the verified link) or an operator corrects the details the
policy allows; the audit entry names the fields, never the values."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.cache import cache

from tests.operators import make_operator
from tests.rights.helpers import link_in, mails_to
from tidings.audience.actions import do_create_contact
from tidings.audience.models import Contact
from tidings.lib.models import AuditEntry
from tidings.rights.actions import (
    RightsError,
    do_create_rights_request,
    do_rectify_contact,
    rectifiable_fields,
)
from tidings.rights.models import RightsRequest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


@pytest.fixture
def ada():
    contact, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Old Company"},
        purpose="newsletter",
    )
    return contact


def test_the_person_corrects_their_details_through_the_verified_link(
    client, ada, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/rights/", {"kind": "rectify", "email": "ada@example.com"})
    path = link_in(mail.outbox[0], "/rights/v/")
    assert "Old Company" not in client.get(path).content.decode()  # not before verifying

    client.post(path)
    form_page = client.get(path).content.decode()
    assert 'value="Old Company"' in form_page
    assert "Save my corrections" in form_page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            path, {"name": "Ada King", "company": "Analytical Engines Ltd", "phone": ""}
        )

    assert response.status_code == 303
    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada King", "Analytical Engines Ltd")
    assert RightsRequest.objects.get().state == "completed"
    receipt = mails_to("ada@example.com")[-1]
    assert "Corrected: name, company." in receipt.body


def test_the_audit_entry_lists_changed_field_names_and_never_values(ada):
    do_rectify_contact(ada, {"name": "Ada King", "company": "Old Company"})

    entry = AuditEntry.objects.get(action="contact.rectified")
    assert entry.details["fields"] == ["name"]
    assert "Ada" not in str(entry.details) and "King" not in str(entry.details)
    assert entry.object_id == str(ada.pk)


def test_only_the_fields_the_policy_allows_can_be_corrected(ada):
    assert "email" not in rectifiable_fields()
    assert "name" in rectifiable_fields()

    with pytest.raises(RightsError, match="cannot be corrected here: email"):
        do_rectify_contact(ada, {"email": "someone@else.example"})
    assert Contact.objects.get(pk=ada.pk).email == "ada@example.com"


def test_an_operator_corrects_the_details_from_the_queue(
    client, ada, django_capture_on_commit_callbacks
):
    officer = make_operator("pat", "privacy_officer")
    client.force_login(officer)
    request = do_create_rights_request(
        "rectify",
        "ada@example.com",
        details="My company changed",
        channel="phone",
        verified=True,
        actor=officer,
    )
    page = client.get(f"/rights/queue/{request.pk}/").content.decode()
    assert "My company changed" in page and 'value="Old Company"' in page

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/rights/queue/{request.pk}/rectify",
            {"name": "Ada Lovelace", "company": "New Company"},
        )

    ada.refresh_from_db()
    assert ada.company == "New Company"
    request.refresh_from_db()
    assert request.state == "completed" and request.details == "" and request.email == ""
    entry = AuditEntry.objects.get(action="contact.rectified")
    assert entry.actor == officer and entry.details["fields"] == ["company"]


def test_what_the_person_writes_about_a_correction_is_screened_before_it_is_stored():
    request = do_create_rights_request(
        "rectify",
        "ada@example.com",
        details="My job title is wrong. I was diagnosed with diabetes last year.",
    )

    assert "diabetes" not in request.details
    assert "My job title is wrong." in request.details


def test_an_operator_edit_and_a_rights_correction_use_the_one_locked_allow_listed_action(ada):
    from tidings.audience.actions import FieldNotAllowed
    from tidings.audience.operator import do_rectify_contact as rectify
    from tidings.audience.operator import do_update_contact

    do_update_contact(ada, {"company": "Engines"}, actor=None)
    do_rectify_contact(ada, {"name": "Ada  King"})  # the person's words, spaces folded

    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada King", "Engines")
    entries = AuditEntry.objects.filter(action="contact.rectified").order_by("pk")
    assert [e.details["fields"] for e in entries] == [["company"], ["name"]]
    with pytest.raises(FieldNotAllowed, match="email"):
        rectify(ada, {"email": "x@example.com"}, allowed=["name"])


def test_a_correction_cannot_empty_a_required_name(client, ada, django_capture_on_commit_callbacks):
    """The preference centre refuses an empty name; a correction, which writes the same field,
    refuses it too: on the person's form, the operator's, the command line and the action."""
    from django.core.management import CommandError, call_command

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/rights/", {"kind": "rectify", "email": "ada@example.com"})
    path = link_in(mail.outbox[0], "/rights/v/")
    client.post(path)
    response = client.post(path, {"name": "   ", "company": "New Company"})
    assert response.status_code == 200
    assert "Name cannot be left empty" in response.content.decode()

    officer = make_operator("pat", "privacy_officer")
    client.force_login(officer)
    request = RightsRequest.objects.get()
    response = client.post(
        f"/rights/queue/{request.pk}/rectify",
        {"name": " \t ", "company": "New Company"},
        follow=True,
    )
    assert "Name cannot be left empty" in response.content.decode()

    with pytest.raises(CommandError, match="name: Name cannot be left empty"):
        call_command("rights", "rectify", str(request.pk), "--set", "name=  ")
    with pytest.raises(RightsError, match="cannot be left empty"):
        do_rectify_contact(ada, {"name": "  "})

    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada Lovelace", "Old Company")
    request.refresh_from_db()
    assert request.state == "verified"
    do_rectify_contact(ada, {"company": "Engines"})  # a correction of other fields still goes
    ada.refresh_from_db()
    assert ada.company == "Engines"
