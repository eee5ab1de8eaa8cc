"""The operator's CRM pages: create, search and view every kind of record, and its retention."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.audience.public_helpers import reset
from tests.conftest import OPERATOR_PASSWORD
from tidings.audience.models import Contact
from tidings.crm.actions import (
    do_add_support_contact,
    do_create_contract,
    do_create_order,
    do_create_organisation,
    do_create_support_request,
    do_receive_enquiry,
)
from tidings.crm.models import (
    Contract,
    Enquiry,
    Order,
    Organisation,
    SupportContact,
    SupportRequest,
)
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    reset()
    yield
    reset()


@pytest.fixture
def stranger(db):
    """Someone with an account who is not an operator."""
    return get_user_model().objects.create_user(
        "stranger", "stranger@example.org", OPERATOR_PASSWORD
    )


ADA = {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Analytical Engines"}


@pytest.fixture
def records():
    """One record of each kind, made at 10:00 UTC on 1 March 2026."""
    with time_machine.travel("2026-03-01 10:00Z", tick=False):
        initech = do_create_organisation(name="Initech", address="1 Initech Way")
        contract = do_create_contract(
            initech, start=date(2025, 1, 1), end=date(2026, 6, 30), reference="C-1"
        )
        enquiry = do_receive_enquiry(
            {"name": "Grace Hopper", "email": "grace@example.org"},
            channel="telephone",
            message="Do you run courses?",
        )
        order = do_create_order(ADA, organisation=initech, order_reference="INV-2026-001")
        support_contact, _ = do_add_support_contact(
            {"name": "Peter Gibbons", "email": "peter@initech.example", "company": "Initech"},
            organisation=initech,
        )
        request = do_create_support_request(support_contact, subject="TPS reports", notes="Again")
    return {
        "organisation": initech,
        "contract": contract,
        "enquiry": enquiry,
        "order": order,
        "support-contact": support_contact,
        "support-request": request,
    }


def every_page(records) -> list[tuple[str, str]]:
    """(method, URL) of every operator page of the CRM."""
    pages = [("get", reverse("crm:index"))]
    for plural, single in [
        ("organisations", "organisation"),
        ("enquiries", "enquiry"),
        ("orders", "order"),
        ("contracts", "contract"),
        ("support-contacts", "support-contact"),
        ("support-requests", "support-request"),
    ]:
        pk = records[single].pk
        pages += [
            ("get", reverse(f"crm:{plural}")),
            ("get", reverse(f"crm:{single}-new")),
            ("get", reverse(f"crm:{single}", args=[pk])),
            ("get", reverse(f"crm:{single}-edit", args=[pk])),
        ]
    pages += [
        ("post", reverse("crm:enquiry-contacted", args=[records["enquiry"].pk])),
        ("get", reverse("crm:extend", args=["enquiries", records["enquiry"].pk])),
        ("post", reverse("crm:extend", args=["enquiries", records["enquiry"].pk])),
    ]
    return pages


# --- access -----------------------------------------------------------------------------------
def test_a_signed_out_visitor_is_sent_to_sign_in_from_every_crm_page(client, records):
    for method, url in every_page(records):
        response = getattr(client, method)(url)
        assert response.status_code == 302, url
        assert response.url.startswith("/login/?next="), url


def test_someone_who_is_not_an_operator_is_refused_every_crm_page(client, stranger, records):
    client.force_login(stranger)
    for method, url in every_page(records):
        assert getattr(client, method)(url).status_code == 403, url


def test_an_operator_opens_every_crm_page(owner_client, records):
    for method, url in every_page(records):
        if method == "get":
            assert owner_client.get(url).status_code == 200, url


def test_the_navigation_leads_to_the_crm(owner_client):
    page = owner_client.get(reverse("crm:index")).text
    assert f'<a href="{reverse("crm:index")}" aria-current="page">Records</a>' in page


# --- creating ---------------------------------------------------------------------------------
def test_an_operator_records_an_enquiry_that_came_by_phone(owner_client, owner):
    form = owner_client.get(reverse("crm:enquiry-new")).text
    for field in ("name", "email", "phone", "company", "job_title", "work_address"):
        assert f'name="{field}"' in form
    assert 'value="telephone"' in form and 'value="online directories"' in form

    response = owner_client.post(
        reverse("crm:enquiry-new"),
        {
            "name": "Grace Hopper",
            "email": "Grace@Example.ORG",
            "channel": "telephone",
            "message": "Call me back",
        },
    )

    enquiry = Enquiry.objects.select_related("contact").get()
    assert response.url == reverse("crm:enquiry", args=[enquiry.pk])
    assert (enquiry.contact.email, enquiry.channel) == ("Grace@example.org", "telephone")
    assert AuditEntry.objects.get(action="enquiry.received").actor == owner


def test_an_enquiry_from_a_channel_the_policy_does_not_list_is_refused(owner_client):
    response = owner_client.post(
        reverse("crm:enquiry-new"),
        {"name": "G", "email": "g@example.org", "channel": "carrier pigeon", "message": "Hi"},
    )
    assert response.status_code == 200 and not Enquiry.objects.exists()


def test_an_order_needs_what_the_order_purpose_requires(owner_client, records):
    url = reverse("crm:order-new")
    missing_company = {"name": "Ada", "email": "ada2@example.com", "order_reference": "X-1"}
    assert owner_client.post(url, missing_company).status_code == 200
    assert not Order.objects.filter(order_reference="X-1").exists()

    response = owner_client.post(
        url,
        {
            **missing_company,
            "company": "Analytical",
            "organisation": records["organisation"].pk,
            "lines": "2 x Support hours @ 95\nTraining day",
            "invoice_address": "1 Engine Row",
        },
    )
    order = Order.objects.get(order_reference="X-1")
    assert response.url == reverse("crm:order", args=[order.pk])
    assert order.lines == [
        {"description": "Support hours", "quantity": 2, "unit_price": "95.00"},
        {"description": "Training day", "quantity": 1, "unit_price": ""},
    ]
    page = owner_client.get(response.url).text
    assert "Support hours" in page and "95.00" in page


def test_an_operator_adds_an_organisation_a_contract_a_support_contact_and_a_request(owner_client):
    owner_client.post(reverse("crm:organisation-new"), {"name": "Initrode", "address": ""})
    initrode = Organisation.objects.get(name="Initrode")

    bad = owner_client.post(
        reverse("crm:contract-new"),
        {"organisation": initrode.pk, "start": "2026-02-01", "end": "2026-01-01"},
    )
    assert bad.status_code == 200 and not Contract.objects.exists()
    owner_client.post(
        reverse("crm:contract-new"),
        {"organisation": initrode.pk, "reference": "S-9", "start": "2026-01-01", "end": ""},
    )
    assert Contract.objects.get().end is None

    owner_client.post(
        reverse("crm:support-contact-new"),
        {
            "name": "Bill Lumbergh",
            "email": "bill@initrode.example",
            "company": "Initrode",
            "organisation": initrode.pk,
        },
    )
    support_contact = SupportContact.objects.get()
    owner_client.post(
        reverse("crm:support-request-new"),
        {"support_contact": support_contact.pk, "subject": "Cover sheets", "notes": "Memo"},
    )
    assert SupportRequest.objects.get().organisation == initrode

    owner_client.post(
        reverse("crm:support-contact-edit", args=[support_contact.pk]),
        {"left_employer": "2026-01-15"},
    )
    support_contact.refresh_from_db()
    assert support_contact.left_employer == date(2026, 1, 15)
    page = owner_client.get(reverse("crm:organisation", args=[initrode.pk])).text
    assert "Bill Lumbergh" in page and "Cover sheets" in page and "S-9" in page


# --- searching --------------------------------------------------------------------------------
def test_the_lists_search_by_person_organisation_and_reference(owner_client, records):
    def found(name, q):
        return owner_client.get(reverse(name), {"q": q}).text

    assert "INV-2026-001" in found("crm:orders", "inv-2026")
    assert "INV-2026-001" in found("crm:orders", "lovel")
    assert "INV-2026-001" not in found("crm:orders", "grace")
    assert "Do you run courses?" in found("crm:enquiries", "grace@")
    assert "Peter Gibbons" in found("crm:support-contacts", "initech")
    assert "TPS reports" in found("crm:support-requests", "peter")
    assert "C-1" in found("crm:contracts", "init")
    assert "Initech" in found("crm:organisations", "ini")
    everything = found("crm:index", "initech")
    assert "INV-2026-001" in everything and "Peter Gibbons" in everything


def test_a_list_pages_without_counting_the_table(owner_client, django_assert_max_num_queries):
    for i in range(55):
        do_receive_enquiry(
            {"name": f"P {i}", "email": f"p{i}@example.com"}, channel="email", message="Hi"
        )
    with django_assert_max_num_queries(6):
        first = owner_client.get(reverse("crm:enquiries"))
    page = first.context["page"]
    assert len(page.items) == 50 and page.next_after
    second = owner_client.get(reverse("crm:enquiries"), {"after": page.next_after})
    assert len(second.context["page"].items) == 5


# --- retention on record pages ----------------------------------------------------------------
def test_each_record_page_says_when_the_record_will_be_erased(owner_client, records):
    def page(name):
        return owner_client.get(reverse(f"crm:{name}", args=[records[name].pk])).text

    with time_machine.travel("2026-04-01 10:00Z", tick=False):
        enquiry = page("enquiry")
        order = page("order")
        support_contact = page("support-contact")
        support_request = page("support-request")
    assert "Erased on 2027-03-01 unless the person asks us to keep it longer." in enquiry
    assert "Extend on request" in enquiry
    assert "Kept until 2032-03-01, the legal minimum" in order
    assert "Extend on request" not in order
    assert "Erased on 2027-06-30." in support_contact  # a year after Initech's contract ended
    assert "Erased on 2027-06-30." in support_request  # it goes with its support contact


def test_extend_on_request_records_who_asked_and_when(owner_client, owner, records):
    enquiry = records["enquiry"]
    url = reverse("crm:extend", args=["enquiries", enquiry.pk])
    with time_machine.travel("2026-04-01 10:00Z", tick=False):
        refused = owner_client.post(url, {"until": "2027-02-01", "requested_by": "Grace"})
        assert refused.status_code == 200 and "after the one" in refused.text
        response = owner_client.post(
            url, {"until": "2028-03-01", "requested_by": "Grace, on the phone"}
        )
        assert response.url == reverse("crm:enquiry", args=[enquiry.pk])
        page = owner_client.get(response.url).text
    enquiry.refresh_from_db()
    assert enquiry.kept_until == date(2028, 3, 1)
    assert enquiry.kept_until_recorded_at == datetime(2026, 4, 1, 10, tzinfo=UTC)
    assert enquiry.kept_until_recorded_by == owner
    assert "Erased on 2028-03-01, kept longer at the person&#x27;s request." in page
    assert "Grace, on the phone" in page and "by owner" in page


def test_orders_cannot_be_kept_longer_on_request(owner_client, records):
    url = reverse("crm:extend", args=["orders", records["order"].pk])
    response = owner_client.post(url, {"until": "2040-01-01", "requested_by": "Ada"})
    assert response.status_code == 302
    records["order"].refresh_from_db()
    assert records["order"].kept_until is None
    assert owner_client.get(reverse("crm:extend", args=["contracts", 1])).status_code == 404


def test_we_were_in_touch_moves_the_enquirys_clock_on(owner_client, records):
    enquiry = records["enquiry"]
    with time_machine.travel("2026-09-01 10:00Z", tick=False):
        owner_client.post(reverse("crm:enquiry-contacted", args=[enquiry.pk]))
    enquiry.refresh_from_db()
    assert enquiry.last_contact_at == datetime(2026, 9, 1, 10, tzinfo=UTC)
    assert AuditEntry.objects.filter(action="enquiry.contacted").exists()


def test_record_pages_link_to_the_person_and_audit_entries_hold_no_personal_data(
    owner_client, records
):
    ada = Contact.objects.get(email="ada@example.com")
    page = owner_client.get(reverse("crm:order", args=[records["order"].pk])).text
    assert reverse("audience:contact", args=[ada.pk]) in page
    for entry in AuditEntry.objects.all():
        text = str(entry.details).lower()
        assert "ada" not in text and "grace" not in text and "tps" not in text


def test_support_notes_are_screened_and_the_page_says_what_kind_of_thing_was_removed(
    owner_client, records
):
    owner_client.post(
        reverse("crm:support-request-new"),
        {
            "support_contact": records["support-contact"].pk,
            "subject": "Login fails",
            "notes": "Locked out again. He said he has been off work with depression.",
        },
    )
    request = SupportRequest.objects.get(subject="Login fails")
    assert "depression" not in request.notes and request.redacted_categories == ["health"]
    page = owner_client.get(reverse("crm:support-request", args=[request.pk])).text
    assert "Screening removed information from this request (health)" in page


# --- a policy without orders and support contracts --------------------------------------------
def _without_order_and_support(text: str) -> str:
    """The example policy with the order and contract_support purposes (and their retention
    rules) taken out: a company that keeps no CRM of customers."""
    import re

    for table in (
        "purposes.order",
        "purposes.contract_support",
        "retention.order",
        "retention.support_contact",
    ):
        text, removed = re.subn(rf"\n\[{re.escape(table)}\]\n(?:[^\[\n].*\n|\n)*", "\n", text)
        assert removed == 1, table
    return text


def test_with_no_order_or_support_purpose_the_crm_pages_say_so_instead_of_failing(
    owner_client, records, settings, tmp_path
):
    # The records were kept under the example policy; then the company's own policy, with no
    # order or contract_support purpose, is put in place.  Every CRM page answered; the pages
    # that ask a purpose's fields (new order, new support contact, editing one) stopped with a
    # KeyError (500).
    from tidings.policy.commands import EXAMPLE_POLICY

    file = tmp_path / "policy.toml"
    file.write_text(_without_order_and_support(EXAMPLE_POLICY.read_text()), encoding="utf-8")
    settings.TIDINGS_POLICY = file
    for method, url in every_page(records):
        response = getattr(owner_client, method)(url)
        assert response.status_code in {200, 302, 404}, (url, response.status_code)
    response = owner_client.get(reverse("crm:order-new"))
    assert response.status_code == 404
    assert "no “order” purpose" in response.text
    response = owner_client.post(reverse("crm:support-contact-new"), {"name": "X"})
    assert response.status_code == 404
    assert "no “contract_support” purpose" in response.text


def test_a_right_to_left_name_is_isolated_from_the_text_around_it(owner_client):
    """The name "رنا الحسيني (rana@example.org)" ran together with what followed: without
    isolation the bidirectional algorithm drew the bracket and address on the name's side.  Each
    page shows the name inside its own <bdi>, so the text around it stays in order."""
    name = "رنا الحسيني"
    enquiry = do_receive_enquiry(
        {"name": name, "email": "rana@example.org"}, channel="telephone", message="Hello"
    )
    org = do_create_organisation(name="Initech", address="1 Initech Way")
    support_contact, _ = do_add_support_contact(
        {"name": name, "email": "rana@initech.example", "company": "Initech"}, organisation=org
    )
    request = do_create_support_request(support_contact, subject="Help", notes="Please")
    isolated = f"<bdi>{name}</bdi>"
    for url in [
        reverse("crm:index"),
        reverse("crm:enquiry", args=[enquiry.pk]),
        reverse("crm:support-contact", args=[support_contact.pk]),
        reverse("crm:support-request", args=[request.pk]),
        reverse("audience:contacts"),
        reverse("audience:contact", args=[enquiry.contact_id]),
    ]:
        assert isolated in owner_client.get(url).content.decode(), url


@pytest.mark.parametrize("name", ["enquiry", "support-request"])
def test_a_piece_of_works_page_loads_screening_while_the_operator_types(
    owner_client, records, name, monkeypatch
):
    """Its reply and note are screened, and building the engine takes seconds on a fresh
    process: the page starts it in the background, as the public forms do, so that the first
    reply after a start does not wait for it."""
    import threading

    from tidings.policy import screening

    monkeypatch.setattr(screening, "_default", None)  # a process that has not screened yet
    owner_client.get(reverse(f"crm:{name}", args=[records[name].pk]))
    for thread in threading.enumerate():
        if thread.name == "screening-warm-up":
            thread.join(timeout=120)
    assert screening._screener()._engine is not None
