"""The access package (Art. 15/20): everything held about one person, nothing about anyone else,
with the policy's reasons; and a guard that no model holding personal data escapes it."""

from __future__ import annotations

import json

import pytest
import time_machine
from django.apps import apps
from django.core import mail
from django.core.cache import cache
from django.db import models

from tests.rights.helpers import link_in, plant_person, unzip
from tidings.audience.models import Contact
from tidings.audience.sources import covered_models, sources
from tidings.lib.models import AuditEntry
from tidings.rights.actions import (
    do_create_rights_request,
    do_fulfil_access,
    do_verify_rights_request,
)
from tidings.rights.package import build_package

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def test_the_package_holds_everything_about_the_person_and_nothing_about_anyone_else():
    ada = plant_person("ada")
    bob = plant_person("bob")

    files = unzip(build_package(ada.contact))
    everything = "\n".join(files.values())

    for value in ada.values:
        assert value in everything, value
        assert value in files["data.json"] or value in json.dumps(
            json.loads(files["data.json"]), ensure_ascii=False
        ), value
    for value in bob.values:
        assert value not in everything, value
    assert "bob" not in everything.lower()


def test_every_source_with_records_has_a_csv_and_the_json_has_every_source():
    ada = plant_person("ada")

    files = unzip(build_package(ada.contact))
    data = json.loads(files["data.json"])

    assert set(data["data"]) == {s.name for s in sources()}
    for source in sources():
        if data["data"][source.name]["records"]:
            assert f"{source.name}.csv" in files
    assert "summary.html" in files


def test_what_the_person_wrote_with_an_open_request_is_in_their_package():
    # The text of a correction request is kept while the request is open: it is theirs, and
    # was missing from the package (only the request's dates and state were exported).
    ada = plant_person("ada")
    do_create_rights_request(
        "rectify", ada.contact.email, details="My job title is now Head of Research"
    )

    files = unzip(build_package(ada.contact))

    records = json.loads(files["data.json"])["data"]["privacy_requests"]["records"]
    assert "My job title is now Head of Research" in [r.get("details") for r in records]
    assert "What you wrote with your request" in files["summary.html"]
    assert "My job title is now Head of Research" in files["summary.html"]


def test_the_summary_says_why_each_is_held_who_handles_it_how_long_and_the_rights():
    ada = plant_person("ada")

    summary = unzip(build_package(ada.contact))["summary.html"]

    assert "Sending the newsletters you asked for" in summary  # purpose, from the policy
    assert "Consent" in summary and "Legitimate interests" in summary and "Contract" in summary
    assert "Third-party database hosting provider" in summary
    assert "United States" in summary and "standard contractual clauses" in summary
    assert "Kept 12 months after our last contact with you." in summary
    assert "legal minimum" in summary
    assert "Information Commissioner" in summary and "https://ico.org.uk" in summary
    assert "Erasure" in summary and "Portability" in summary


def test_an_address_we_hold_nothing_about_gets_a_package_that_says_so():
    summary = unzip(build_package(None))["summary.html"]

    assert "We hold no personal data about you" in summary


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    ada = plant_person("ada")
    Contact.objects.filter(pk=ada.contact.pk).update(job_title="=HYPERLINK(1)")
    ada.contact.refresh_from_db()

    files = unzip(build_package(ada.contact))

    assert "'=HYPERLINK(1)" in files["contact.csv"]


def test_the_person_downloads_the_package_through_the_link_after_verifying(
    client, django_capture_on_commit_callbacks
):
    ada = plant_person("ada")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/rights/", {"kind": "access", "email": "ada@example.com"})
    verify = link_in(mail.outbox[0], "/rights/v/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(verify)

    page = client.get(verify).content.decode()
    receipt = mail.outbox[-1]
    download = link_in(receipt, "/rights/download/")
    assert 'href="http://testserver/rights/download/' in page or "/rights/download/" in page
    response = client.get(download)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "no-store" in response["Cache-Control"]
    assert "ada-enquiry-message" in unzip(response.content)["enquiries.csv"]
    assert AuditEntry.objects.filter(action="rights.package_downloaded").count() == 1
    assert ada.contact.pk  # nothing was erased by access


def test_the_download_link_expires(client, django_capture_on_commit_callbacks):
    plant_person("ada")
    request = do_create_rights_request("access", "ada@example.com")
    do_verify_rights_request(request)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        do_fulfil_access(request)
    download = link_in(mail.outbox[-1], "/rights/download/")

    with time_machine.travel(request.received_at, tick=False) as traveller:
        traveller.shift(8 * 24 * 3600)
        assert client.get(download).status_code == 410


def test_no_package_before_verification(client):
    request = do_create_rights_request("access", "ada@example.com")
    from tidings.rights.tokens import download_url

    path = "/" + download_url(request.pk).split("://", 1)[1].split("/", 1)[1]

    assert client.get(path).status_code == 404


# --- the guard: every model with personal data is a registered source ------------------------
# Models that point at a person or hold an address but are not a data subject's records.
NOT_PERSONAL = {
    "auth.user": "operators' own accounts, not data subjects of the product",
    "campaigns.sender": "the organisation's own sending addresses",
    "campaigns.campaign": "reply_to is the organisation's address",
    "rights.auditentry": "internal ids and counts only, never personal data (checked in audit.py)",
    "campaigns.recipientdomain": "a count of recipients per mail domain: an anonymous aggregate",
    "api.idempotencykey": "a client's retry key, a keyed hash of its request and the id and "
    "status of the message it queued (no more than the message row keeps), for 24 hours",
}


def _points_at(model: type[models.Model], targets: set[type[models.Model]]) -> bool:
    for field in model._meta.get_fields():
        if field.is_relation and field.concrete and field.related_model in targets:
            return True
        if field.many_to_many and field.concrete and field.related_model in targets:
            return True
    return False


def _holds_an_address(model: type[models.Model]) -> bool:
    for field in model._meta.concrete_fields:
        name = field.name.lower()
        if isinstance(field, models.EmailField) or name in ("to", "recipient", "recipients"):
            return True
        if "email" in name:
            return True
    return False


def personal_models() -> set[type[models.Model]]:
    """Models holding a person's data: an address, a link to a Contact, or a link to a model
    that is itself personal (a tracking event of a delivery, a request of a support contact)."""
    found = {
        m
        for m in apps.get_models()
        if _holds_an_address(m) and m._meta.label_lower not in NOT_PERSONAL
    }
    found.add(Contact)
    while True:
        more = {m for m in apps.get_models() if m not in found and _points_at(m, found)}
        more = {m for m in more if m._meta.label_lower not in NOT_PERSONAL}
        if not more:
            return found
        found |= more


def test_every_model_with_personal_data_is_exported_and_erased_by_a_source():
    covered = covered_models()
    missing = sorted(
        m._meta.label
        for m in personal_models()
        if m not in covered and m._meta.label_lower not in NOT_PERSONAL
    )

    assert not missing, (
        f"{', '.join(missing)} hold personal data but no rights source covers them: register "
        "one (tidings.audience.sources) so access exports it and erasure erases it"
    )


def test_the_guard_catches_a_new_model_that_points_at_a_contact():
    class TrackingEvent(models.Model):
        delivery = models.ForeignKey("campaigns.Delivery", on_delete=models.CASCADE)

        class Meta:
            app_label = "campaigns"

        def __str__(self) -> str:
            return f"Tracking event #{self.pk}"

    try:
        assert TrackingEvent in personal_models()
        assert TrackingEvent not in covered_models()
    finally:
        del apps.all_models["campaigns"]["trackingevent"]
        apps.clear_cache()


# --- a document a person can read -------------------------------------------------------------
def _readable_text(summary: str) -> str:
    """What a reader sees: the page's text without its styles and tags."""
    import html
    import re

    body = re.sub(r"<style>.*?</style>", " ", summary, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def _full_person():
    from tests.rights.generators import distinct_ids, fill, new_person

    distinct_ids()
    return fill(new_person())


def test_the_summary_has_no_timestamps_internal_names_or_template_code():
    import re

    person = _full_person()

    files = unzip(build_package(person.contact))
    text = _readable_text(files["summary.html"])

    assert not re.search(r"\d{4}-\d{2}-\d{2}", text), "an ISO date or timestamp"
    for internal in ("wording_sha256", "source_ref", "created_at", "_at", "import:", "system:"):
        assert internal not in text, internal
    assert not re.search(r"\{\{|\{%|\}\}", text)
    assert str(person.contact.pk) not in text  # ids stay in data.json
    data = json.loads(files["data.json"])
    assert data["data"]["consent"]["records"][0]["wording_sha256"]  # complete for machines


def test_the_summary_says_in_words_what_each_email_message_and_event_was():
    # The summary showed the queue's and the help desk's machine words: "Kind: Crm
    # acknowledgement email", "Kind: journey:12" (an internal id), "Kind: Outbox", "From: From
    # them" for the person's own message, "Source: Pipe", "What happened: Bounce soft" and
    # "Attachments not kept: 0".
    import re

    from tidings.campaigns.queue import enqueue_message

    person = _full_person()
    for kind in ("journey:12", "crm:reply", "transactional:3"):
        enqueue_message(
            person.contact, kind=kind, subject="Hello", text="Hi", from_email="us@example.co.uk"
        )

    text = " ".join(_readable_text(unzip(build_package(person.contact))["summary.html"]).split())

    for machine in (
        "Crm ",
        "journey:",
        "crm:",
        "transactional:",
        "Outbox",
        "From them",
        "Pipe",
        "Bounce soft",
        "Attachments not kept 0",
    ):
        assert machine not in text, machine
    for words in (
        "Acknowledgement of your enquiry or request",
        "Email of an automated series",
        "Our answer to your enquiry or request",
        "From You",
        "Delivered by our mail server",
        "You opened it",
        "It could not be delivered for a while",
    ):
        assert words in text, words
    # What became of their mail to the support address: the references they were given, not
    # the internal numbers ("added to enquiry #3 (by In-Reply-To)").
    assert "In-Reply-To" not in text and not re.search(r"#\d", text)
    assert re.search(r"Added to enquiry E-\d+", text) and re.search(r"support request R-\d", text)


def test_dates_and_times_are_in_words_in_the_controllers_time_zone(settings):
    from datetime import UTC, datetime

    from tidings.audience.models import ConsentEvent

    settings.TIME_ZONE = "Europe/London"
    ada = plant_person("ada")
    # 23:30 UTC on 1 July is 00:30 on 2 July in London (summer time).
    ConsentEvent.objects.create(
        contact=ada.contact,
        purpose="marketing",
        channel="post",
        action="granted",
        source="operator",
        at=datetime(2026, 7, 1, 23, 30, tzinfo=UTC),
    )

    text = _readable_text(unzip(build_package(ada.contact))["summary.html"])

    assert "2 July 2026 at 00:30" in text
    assert "You gave your consent to marketing (by post)." in text
    assert "Europe/London" in text


def test_campaign_subjects_read_as_the_person_received_them():
    from tidings.campaigns.models import Campaign, Delivery

    ada = plant_person("ada")
    campaign = Campaign.objects.create(
        name="Spring", subject="{{ contact.first_name }}, spring is here", status="finished"
    )
    Delivery.objects.create(campaign=campaign, contact=ada.contact, status="sent")

    files = unzip(build_package(ada.contact))

    assert "Ada, spring is here" in _readable_text(files["summary.html"])
    assert "Ada, spring is here" in files["campaigns_received.csv"]
    assert "{{" not in files["campaigns_received.csv"]


def test_why_we_hold_it_is_said_once_per_reason_and_the_contents_link_to_every_part():
    import re

    person = _full_person()

    summary = unzip(build_package(person.contact))["summary.html"]

    whys = re.findall(r'<div class="why">(.*?)</div>', summary, flags=re.S)
    assert len(whys) == len(set(whys)), "the same reason is repeated"
    assert summary.count("Sending the newsletters you asked for.") == 1
    contents = re.search(r'<nav class="contents".*?</nav>', summary, flags=re.S).group(0)
    targets = re.findall(r'href="#([^"]+)"', contents)
    for source in sources():
        if source.export(person.contact):
            assert source.heading in contents, source.heading
    for target in targets:
        assert f'id="{target}"' in summary, target


def test_an_imported_persons_consent_shows_how_not_the_import_number():
    from tidings.audience.models import ConsentEvent

    ada = plant_person("ada")
    ConsentEvent.objects.create(
        contact=ada.contact,
        purpose="newsletter",
        channel="email",
        action="granted",
        source="import",
        source_ref="import:1",
    )

    text = _readable_text(unzip(build_package(ada.contact))["summary.html"])

    assert "import:1" not in text and "How Import" in " ".join(text.split())


def test_an_access_request_by_address_covers_the_contacts_the_upgrade_kept_apart(
    client, django_capture_on_commit_callbacks
):
    """Until an operator merges them (``tidings audience merge-contacts``), a contact the upgrade
    to case-folded address keys kept apart (NULL key) is the same person's: in the package."""
    from tidings.audience.actions import do_create_contact
    from tidings.crm.models import Enquiry

    zoe, _ = do_create_contact({"email": "zoë@example.com", "name": "Zoë"}, purpose="newsletter")
    (twin,) = Contact.objects.bulk_create(
        [Contact(email="ZOË@example.com", email_key=None, name="Zoë Twin")]
    )
    Enquiry.objects.create(contact=twin, channel="email", message="zoe-twin-enquiry-text")

    for contact in (zoe, twin):
        files = unzip(build_package(contact))
        assert "Zoë Twin" in files["contact.csv"] and "zoë@example.com" in files["contact.csv"]
        assert "zoe-twin-enquiry-text" in files["enquiries.csv"]

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        request = do_create_rights_request("access", "ZOË@example.com", verified=True)
        do_fulfil_access(request)
    download = link_in(mail.outbox[-1], "/rights/download/")
    assert "zoe-twin-enquiry-text" in unzip(client.get(download).content)["enquiries.csv"]
