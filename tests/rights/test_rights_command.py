"""``tidings rights``: a request received by post or telephone handled from the command line."""

from __future__ import annotations

import io
import stat
import zipfile
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.rights.helpers import mails_to, plant_person
from tidings.audience.actions import do_create_contact
from tidings.audience.models import Contact
from tidings.lib.models import AuditEntry
from tidings.rights.actions import do_create_rights_request
from tidings.rights.models import RightsRequest

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rights", *args, stdout=out)
    return out.getvalue()


def test_a_request_by_post_is_recorded_verified_and_an_erasure_carried_out(
    django_capture_on_commit_callbacks,
):
    ada, _ = do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")
    do_create_contact({"name": "Bob", "email": "bob@example.com"}, purpose="newsletter")
    mailed = len(mails_to("ada@example.com"))

    with django_capture_on_commit_callbacks(execute=True):
        said = run("new", "erase", "ADA@example.com", "--channel", "post", "--verified")
    request = RightsRequest.objects.latest("pk")
    assert f"Request #{request.pk} recorded" in said and "identity verified" in said
    assert request.channel == "post" and request.state == RightsRequest.State.VERIFIED
    assert len(mails_to("ada@example.com")) == mailed  # verified by the operator: no link

    with django_capture_on_commit_callbacks(execute=True):
        said = run("fulfil", str(request.pk))

    assert not Contact.objects.filter(pk=ada.pk).exists()
    assert Contact.objects.filter(email="bob@example.com").exists()
    assert "erased or made anonymous" in said
    assert "emailed a receipt" in said
    assert len(mails_to("ADA@example.com")) == 1  # the receipt, to the address as given
    actors = set(
        AuditEntry.objects.filter(object_id=str(request.pk)).values_list("actor_label", flat=True)
    )
    assert actors == {"cli"}


def test_an_unverified_request_sends_the_link_and_cannot_be_fulfilled_yet(
    django_capture_on_commit_callbacks,
):
    do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")

    with django_capture_on_commit_callbacks(execute=True):
        said = run("new", "access", "ada@example.com")
    request = RightsRequest.objects.get()

    assert "verification link has been emailed" in said
    assert len(mails_to("ada@example.com")) == 1
    with pytest.raises(CommandError, match=rf"request #{request.pk}: .*verified first"):
        run("fulfil", str(request.pk))
    assert run("verify", str(request.pk)).startswith(f"Request #{request.pk}: identity verified")


def test_the_list_shows_no_address_and_flags_what_is_overdue():
    do_create_contact({"name": "Ada", "email": "ada@example.com"}, purpose="newsletter")
    late = do_create_rights_request("access", "ada@example.com", actor="cli")
    RightsRequest.objects.filter(pk=late.pk).update(due_on=timezone.localdate() - timedelta(days=1))
    soon = do_create_rights_request("object", "zed@example.com", actor="cli")
    RightsRequest.objects.filter(pk=soon.pk).update(due_on=timezone.localdate() + timedelta(days=3))

    listed = run("list")

    assert "@" not in listed
    lines = listed.splitlines()
    assert lines[0].startswith(f"#{late.pk} ") and lines[0].endswith("OVERDUE")
    assert lines[1].startswith(f"#{soon.pk} ") and lines[1].endswith("due soon")
    assert run("list", "--show", "closed") == "No closed requests.\n"
    assert "ada@example.com" in run("show", str(late.pk))


def test_a_rectification_takes_the_policy_fields_and_refuses_others(
    django_capture_on_commit_callbacks,
):
    contact, _ = do_create_contact(
        {"name": "Ada Lovelase", "email": "ada@example.com"}, purpose="newsletter"
    )
    request = do_create_rights_request("rectify", "ada@example.com", verified=True, actor="cli")

    with pytest.raises(CommandError, match="cannot be corrected here"):
        run("rectify", str(request.pk), "--set", "email=eve@example.com")
    with pytest.raises(CommandError, match="FIELD=VALUE"):
        run("fulfil", str(request.pk))
    with django_capture_on_commit_callbacks(execute=True):
        said = run("rectify", str(request.pk), "--set", "name=Ada  Lovelace")

    contact.refresh_from_db()
    assert contact.name == "Ada Lovelace"
    assert "corrected (name)" in said
    request.refresh_from_db()
    assert request.state == RightsRequest.State.COMPLETED


def test_the_package_is_written_for_this_user_only_and_never_over_a_file(tmp_path):
    ada = plant_person("ada")
    request = do_create_rights_request("access", "ada@example.com", verified=True, actor="cli")
    target = tmp_path / "ada.zip"

    said = run("package", str(request.pk), "-o", str(target))

    assert "package written" in said
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    names = zipfile.ZipFile(target).namelist()
    assert "summary.html" in names and "data.json" in names
    assert ada.contact.name in zipfile.ZipFile(target).read("data.json").decode()
    with pytest.raises(CommandError, match="already exists"):
        run("package", str(request.pk), "-o", str(target))
    assert AuditEntry.objects.filter(
        action="rights.package_downloaded", object_id=str(request.pk), actor_label="cli"
    ).exists()


def test_no_package_before_verification_and_a_missing_request_is_one_line(tmp_path):
    request = do_create_rights_request("access", "ada@example.com", actor="cli")

    with pytest.raises(CommandError, match=r"(?i)only a verified access request has a package"):
        run("package", str(request.pk), "-o", str(tmp_path / "x.zip"))
    assert not (tmp_path / "x.zip").exists()
    assert not AuditEntry.objects.filter(action="rights.package_downloaded").exists()
    with pytest.raises(CommandError, match=r"^no request #999999$"):
        run("show", "999999")
    with pytest.raises(CommandError, match="not an email address"):
        run("new", "access", "not-an-address")


def test_a_refusal_and_an_extension_need_a_reason_the_person_is_told(
    django_capture_on_commit_callbacks,
):
    request = do_create_rights_request("access", "ada@example.com", verified=True, actor="cli")

    with django_capture_on_commit_callbacks(execute=True):
        extended = run("extend", str(request.pk), "--reason", "The request is complex.")
        refused = run("refuse", str(request.pk), "--reason", "Manifestly excessive.")

    assert "told why" in extended and "refused" in refused
    bodies = " ".join(m.body for m in mails_to("ada@example.com"))
    assert "The request is complex." in bodies and "Manifestly excessive." in bodies
