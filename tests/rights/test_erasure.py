"""Erasure (Art. 17): everything goes but the legal minimum, statistics stay anonymous, the
address stays suppressed by hash, and it is safe to run twice or after a crash."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.core.cache import cache

from tests.audience.public_helpers import make_form, make_list
from tests.rights.helpers import link_in, mails_to, plant_person, unzip
from tidings.audience import sources as registry
from tidings.audience.actions import do_confirm_signup, do_sign_up
from tidings.audience.emails import email_hmac
from tidings.audience.models import ConsentEvent, Contact, Subscription, Suppression
from tidings.audience.sources import day_in_words
from tidings.audience.tokens import ConfirmRequest
from tidings.campaigns.models import Delivery, OutboxMessage, OutgoingMessage
from tidings.crm.models import Enquiry, Order, SupportContact, SupportRequest
from tidings.lib.models import AuditEntry
from tidings.rights.actions import (
    do_create_rights_request,
    do_erase_contact,
    do_fulfil_rights_request,
    do_verify_rights_request,
)
from tidings.rights.models import RightsRequest
from tidings.rights.package import build_package

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()


def everything_of(planted) -> dict[str, int]:
    contact = planted.contact
    return {
        "subscriptions": Subscription.objects.filter(contact_id=contact.pk).count(),
        "consent": ConsentEvent.objects.filter(contact_id=contact.pk).count(),
        "enquiries": Enquiry.objects.filter(contact_id=contact.pk).count(),
        "support": SupportContact.objects.filter(contact_id=contact.pk).count(),
        "support_requests": SupportRequest.objects.filter(
            support_contact__contact_id=contact.pk
        ).count(),
        "deliveries": Delivery.objects.filter(contact_id=contact.pk).count(),
        "outgoing": OutgoingMessage.objects.filter(contact_id=contact.pk).count(),
        "outbox": OutboxMessage.objects.filter(to__icontains=contact.email).count(),
        "requests": RightsRequest.objects.filter(contact_id=contact.pk).count(),
    }


def test_erasure_removes_everything_but_the_orders_the_law_keeps():
    ada = plant_person("ada")
    bob = plant_person("bob")
    bob_before = everything_of(bob)

    receipt = do_erase_contact(ada.contact)

    assert set(everything_of(ada).values()) == {0}
    assert everything_of(bob) == bob_before
    order = Order.objects.get(pk=ada.order.pk)  # legal minimum: kept, with what it needs
    contact = Contact.objects.get(pk=ada.contact.pk)
    assert (contact.name, contact.email, contact.company) == (
        "Ada Person",
        "ada@example.com",
        "ada-company",
    )
    assert contact.phone == contact.job_title == "" and contact.attributes == {}
    six_years = ada.order.created_at.replace(year=ada.order.created_at.year + 6)
    assert any(
        "order" in k.sentence and f"until {day_in_words(six_years)}" in k.sentence
        for k in receipt.kept
    )
    assert order.contact_id == contact.pk


def test_the_receipt_lists_the_kept_order_with_the_date_it_goes(
    client, django_capture_on_commit_callbacks
):
    ada = plant_person("ada")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/rights/", {"kind": "erase", "email": "ada@example.com"})
    verify = link_in(mail.outbox[0], "/rights/v/")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(verify)

    receipt = mails_to("ada@example.com")[-1]
    six_years = day_in_words(ada.order.created_at.replace(year=ada.order.created_at.year + 6))
    assert "is done" in receipt.subject
    assert f"until {six_years}" in receipt.body
    assert "ada-order-ref" not in receipt.body
    page = client.get(verify).content.decode()
    assert f"until {six_years}" in page
    assert "What the law requires us to keep" in page


def test_a_person_with_nothing_kept_is_deleted_and_their_consent_history_is_a_tombstone():
    ada = plant_person("ada")
    Order.objects.filter(pk=ada.order.pk).delete()
    events = ConsentEvent.objects.count()

    do_erase_contact(ada.contact)

    assert not Contact.objects.filter(pk=ada.contact.pk).exists()
    assert ConsentEvent.objects.count() == events  # the ledger keeps its anonymous events
    assert not ConsentEvent.objects.filter(ip_address__isnull=False).exists()


def test_campaign_statistics_stay_as_anonymous_counts():
    ada = plant_person("ada")

    do_erase_contact(ada.contact)

    delivery = Delivery.objects.get(pk=ada.delivery.pk)
    assert delivery.contact_id is None and delivery.status == "sent"
    outgoing = OutgoingMessage.objects.get(pk=ada.outgoing.pk)
    assert outgoing.contact_id is None and outgoing.subject == outgoing.text == ""
    outbox = OutboxMessage.objects.get(pk=ada.outbox.pk)
    assert outbox.to == "" and bytes(outbox.message) == b""


def test_outbox_copies_to_an_internationalised_address_are_found_in_either_spelling():
    # The delivery engine writes an IDN domain as the wire has it (xn--), and a privacy
    # request's mail keeps the address as the person typed it (capitals too): both are the
    # contact's mailbox, and found on SQLite as on PostgreSQL (LIKE folds ASCII only there).
    jorg = plant_person("jorg", email="jörg@bücher.example")
    wire = OutboxMessage.objects.create(
        from_email="news@example.co.uk",
        to="Jörg Person <jörg@xn--bcher-kva.example>",
        subject="jorg-wire-subject",
        message=b"To: jorg\n\njorg-wire-body",
    )
    typed = OutboxMessage.objects.create(
        from_email="news@example.co.uk",
        to="JÖRG@bücher.example",
        subject="jorg-typed-subject",
        message=b"To: jorg\n\njorg-typed-body",
    )
    other = OutboxMessage.objects.create(
        from_email="news@example.co.uk",
        to="jörg@xn--bcher-kva.example.org",
        subject="someone else's",
        message=b"kept",
    )

    package = json.loads(unzip(build_package(jorg.contact))["data.json"])
    subjects = {m["subject"] for m in package["data"]["emails"]["records"]}
    assert {"jorg-wire-subject", "jorg-typed-subject"} <= subjects
    assert "someone else's" not in subjects

    do_erase_contact(jorg.contact)

    for message in (wire, typed):
        message.refresh_from_db()
        assert message.to == "" and bytes(message.message) == b""
    other.refresh_from_db()
    assert other.subject == "someone else's"


def test_the_address_is_suppressed_by_hash_with_the_reason_erased():
    ada = plant_person("ada")

    do_erase_contact(ada.contact)

    entry = Suppression.objects.get(email_hmac=email_hmac("ada@example.com"))
    assert entry.reason == "erased"


def test_their_privacy_requests_stay_without_anything_that_names_them():
    ada = plant_person("ada")

    do_erase_contact(ada.contact)

    request = RightsRequest.objects.get()
    assert (request.contact_id, request.email, request.details) == (None, "", "")
    assert request.email_hmac == email_hmac("ada@example.com")


def test_the_audit_entry_has_counts_and_no_personal_data():
    ada = plant_person("ada")

    do_erase_contact(ada.contact)

    entry = AuditEntry.objects.get(action="contact.erased")
    assert entry.details["counts"]["enquiries"] == 1
    assert "ada" not in str(entry.details).lower()


def test_erasing_twice_changes_nothing_more_and_does_not_fail():
    ada = plant_person("ada")
    do_erase_contact(ada.contact)
    first = unzip(build_package(Contact.objects.filter(pk=ada.contact.pk).first()))

    again = do_erase_contact(ada.contact)

    assert again.counts == {}
    assert (
        unzip(build_package(Contact.objects.filter(pk=ada.contact.pk).first()))["data.json"].split(
            '"data"'
        )[1]
        == first["data.json"].split('"data"')[1]
    )
    assert Suppression.objects.count() == 1


def test_a_crash_midway_leaves_everything_as_it_was_and_a_rerun_finishes(monkeypatch):
    ada = plant_person("ada")
    before = everything_of(ada)
    crashing = registry.source("support_contacts")

    def crash(found):
        raise RuntimeError("the machine lost power")

    monkeypatch.setitem(
        registry._SOURCES,
        "support_contacts",
        registry.PersonalData(**{**crashing.__dict__, "remove": crash}),
    )
    with pytest.raises(RuntimeError):
        do_erase_contact(ada.contact)

    assert everything_of(ada) == before  # enquiries, subscriptions... erased before it: back
    assert not Suppression.objects.exists()
    monkeypatch.setitem(registry._SOURCES, "support_contacts", crashing)

    do_erase_contact(ada.contact)

    assert set(everything_of(ada).values()) == {0}


def test_an_erasure_request_for_an_unknown_address_still_suppresses_it(
    django_capture_on_commit_callbacks,
):
    request = do_create_rights_request("erase", "nobody@example.com")
    do_verify_rights_request(request)
    with django_capture_on_commit_callbacks(execute=True):
        done = do_fulfil_rights_request(request)

    assert done.state == "completed"
    assert Suppression.objects.get().reason == "erased"
    assert "held nothing else" in mails_to("nobody@example.com")[-1].body


def test_a_sign_up_by_someone_else_does_not_bring_an_erased_person_back_but_theirs_does():
    news = make_list("Weekly", "product news")
    form = make_form([news], slug="weekly")
    ada = plant_person("ada")
    Order.objects.filter(pk=ada.order.pk).delete()
    do_erase_contact(ada.contact)

    do_sign_up(
        form, {"email": "ada@example.com", "name": "Ada"}, list_ids=[news.pk], wording_text="Yes"
    )

    # Someone typed the address in: nothing is subscribed; the mailbox is asked to confirm.
    assert not Subscription.objects.filter(status="confirmed").exists()
    assert Suppression.objects.get().reason == "erased"
    confirmation = OutgoingMessage.objects.get(kind="system:confirmation")

    # The person clicked the link in their own mailbox: a new, explicit sign-up of theirs.
    do_confirm_signup(ConfirmRequest(contact_id=confirmation.contact_id, list_ids=(news.pk,)))

    assert Subscription.objects.get(mailing_list=news).status == "confirmed"
    assert not Suppression.objects.exists()


def test_a_re_import_skips_an_erased_address(tmp_path, settings):
    from tidings.audience.imports import create_import, run_import

    settings.DATA_DIR = tmp_path / "data"
    news = make_list("Weekly", "product news")
    ada = plant_person("ada")
    Order.objects.filter(pk=ada.order.pk).delete()
    do_erase_contact(ada.contact)
    path = tmp_path / "contacts.csv"
    path.write_text("email,name\nada@example.com,Ada\ncyd@example.com,Cyd\n", encoding="utf-8")

    imp = run_import(
        create_import(mailing_list=news, original_filename=path.name, consent_source="A fair"),
        path,
    )

    assert imp.skipped_suppressed == 1
    assert not Contact.objects.filter(email="ada@example.com").exists()
    assert Contact.objects.filter(email="cyd@example.com").exists()
