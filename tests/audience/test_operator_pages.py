"""The operator's pages for contacts, lists and the suppression list."""

import pytest
from django.urls import reverse

from tidings.audience.actions import do_create_contact, do_subscribe
from tidings.audience.contacts import search_contacts
from tidings.audience.emails import email_hmac
from tidings.audience.models import (
    ConsentEvent,
    Contact,
    MailingList,
    Subscription,
    SuppressedDomain,
    Suppression,
)
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def news():
    return MailingList.objects.create(name="Product news", topic="product news")


def person(name, email, **extra):
    contact, _ = do_create_contact({"name": name, "email": email, **extra}, purpose="newsletter")
    return contact


def test_the_contact_list_searches_by_the_start_of_the_address_or_any_name_word(owner_client):
    person("Ada Lovelace", "ada@example.com")
    person("Grace Hopper", "grace@example.org")
    page = owner_client.get(reverse("audience:contacts"), {"q": "lovel"}).content.decode()
    assert "ada@example.com" in page and "grace@example.org" not in page
    page = owner_client.get(reverse("audience:contacts"), {"q": "GRACE@"}).content.decode()
    assert "grace@example.org" in page and "ada@example.com" not in page


def test_the_contact_list_pages_without_counting_the_table(
    owner_client, django_assert_max_num_queries
):
    for i in range(60):
        person(f"Person {i}", f"p{i}@example.com")
    with django_assert_max_num_queries(8):
        first = owner_client.get(reverse("audience:contacts"))
    assert first.context["page"].next_after is not None
    assert len(first.context["page"].items) == 50
    second = owner_client.get(
        reverse("audience:contacts"), {"after": first.context["page"].next_after}
    )
    assert len(second.context["page"].items) == 10
    assert {c.pk for c in first.context["page"].items}.isdisjoint(
        c.pk for c in second.context["page"].items
    )


def test_a_contact_page_shows_subscriptions_and_the_whole_consent_history(owner_client, news):
    ada = person("Ada Lovelace", "ada@example.com")
    do_subscribe(
        ada, news, source="form", source_ref="form:1", wording_text="Yes please", confirmed=True
    )
    page = owner_client.get(reverse("audience:contact", args=[ada.pk])).content.decode()
    assert "Product news" in page
    assert "Yes please" in page
    assert "Sign-up form" in page


def test_an_operator_adds_a_contact_to_a_list_only_saying_how_they_consented(
    owner_client, news, owner
):
    ada = person("Ada Lovelace", "ada@example.com")
    url = reverse("audience:contact-lists", args=[ada.pk])
    owner_client.post(url, {"list": news.pk, "action": "add", "consent_source": ""})
    assert not Subscription.objects.filter(contact=ada).exists()
    owner_client.post(
        url, {"list": news.pk, "action": "add", "consent_source": "asked at the user conference"}
    )
    sub = Subscription.objects.get(contact=ada, mailing_list=news)
    assert sub.status == "confirmed"
    event = ConsentEvent.objects.get(contact=ada)
    assert (event.action, event.source, event.source_ref) == (
        "granted",
        "operator",
        f"user:{owner.pk}",
    )
    assert event.wording.text == "asked at the user conference"

    owner_client.post(url, {"list": news.pk, "action": "remove"})
    sub.refresh_from_db()
    assert sub.status == "unsubscribed" and sub.unsubscribed_at is not None
    assert ConsentEvent.objects.filter(contact=ada, action="withdrawn").count() == 1


def test_bulk_actions_apply_to_every_contact_matching_the_filter(owner_client, news):
    for i in range(7):
        person(f"Lovelace {i}", f"l{i}@example.com")
    person("Someone Else", "else@example.com")
    response = owner_client.post(
        reverse("audience:contacts") + "?q=lovelace",
        {
            "action": "add",
            "target": news.pk,
            "consent_source": "signed paper form",
            "scope": "filtered",
        },
    )
    assert response.status_code == 302
    assert Subscription.objects.filter(mailing_list=news, status="confirmed").count() == 7
    assert ConsentEvent.objects.filter(mailing_list=news).count() == 7
    assert AuditEntry.objects.filter(action="list.contacts_added").get().details == {"count": 7}


def test_editing_a_contact_audits_the_changed_field_names_not_the_values(owner_client):
    ada = person("Ada Lovelace", "ada@example.com")
    response = owner_client.post(
        reverse("audience:contact-edit", args=[ada.pk]),
        {
            "name": "Ada King",
            "email": "ada@example.com",
            "phone": "",
            "company": "Engines",
            "job_title": "",
            "work_address": "",
        },
    )
    assert response.status_code == 302
    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada King", "Engines")
    entry = AuditEntry.objects.get(action="contact.rectified")
    assert entry.details == {"fields": ["company", "name"]}
    assert "Ada" not in str(entry.details)


@pytest.mark.parametrize("name", ["", "   ", "\u00a0"])
def test_an_operator_cannot_empty_a_required_name_and_the_form_says_which(owner_client, name):
    """The same rule as a rights request's correction (and the API): nothing is saved."""
    ada = person("Ada Lovelace", "ada@example.com")
    data = {"email": "ada@example.com", "phone": "", "job_title": "", "work_address": ""}
    url = reverse("audience:contact-edit", args=[ada.pk])

    response = owner_client.post(url, {**data, "name": name, "company": "Engines"})

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "name": ["Name cannot be left empty: write the correct one."]
    }
    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada Lovelace", "")
    assert not AuditEntry.objects.filter(action="contact.rectified").exists()


def test_an_operators_work_address_has_the_same_limit_as_the_api(owner_client):
    ada = person("Ada Lovelace", "ada@example.com")
    data = {"name": "Ada", "email": "ada@example.com", "phone": "", "company": "", "job_title": ""}
    url = reverse("audience:contact-edit", args=[ada.pk])

    response = owner_client.post(url, {**data, "work_address": "x" * 2001})

    assert response.status_code == 200 and "at most 2000 characters" in response.text
    ada.refresh_from_db()
    assert ada.work_address == ""
    assert owner_client.post(url, {**data, "work_address": "x" * 2000}).status_code == 302


def test_the_edit_form_offers_only_fields_the_policy_lets_us_hold(owner_client, settings, tmp_path):
    from tidings.policy.commands import EXAMPLE_POLICY

    text = EXAMPLE_POLICY.read_text().replace(
        'contact = ["email", "phone", "work_address"]', 'contact = ["email", "work_address"]'
    )
    text = text.replace('"phone", ', "")
    path = tmp_path / "policy.toml"
    path.write_text(text)
    settings.TIDINGS_POLICY = path  # the policy is loaded afresh (setting_changed)
    ada = person("Ada Lovelace", "ada@example.com")
    form = owner_client.get(reverse("audience:contact-edit", args=[ada.pk])).context["form"]
    assert "phone" not in form.fields and "company" in form.fields


def test_lists_are_created_with_a_policy_topic_and_closed(owner_client):
    response = owner_client.post(
        reverse("audience:list-new"), {"name": "Gossip", "topic": "gossip", "description": ""}
    )
    assert "topic" in response.context["form"].errors
    owner_client.post(
        reverse("audience:list-new"),
        {"name": "Training days", "topic": "training", "is_public": "on"},
    )
    training = MailingList.objects.get(name="Training days")
    owner_client.post(reverse("audience:list-close", args=[training.pk]))
    training.refresh_from_db()
    assert training.closed_at is not None


def test_a_list_exports_its_confirmed_subscribers_as_safe_csv(owner_client, news):
    ada = person('=HYPERLINK("http://evil")', "ada@example.com")
    do_subscribe(ada, news, source="form", wording_text="Yes", confirmed=True)
    bob = person("Bob Pending", "bob@example.com")
    do_subscribe(bob, news, source="form", wording_text="Yes", confirmed=False)
    response = owner_client.get(reverse("audience:list-export", args=[news.pk]))
    body = b"".join(response.streaming_content).decode()
    assert "ada@example.com" in body and "bob@example.com" not in body
    assert "'=HYPERLINK" in body
    assert AuditEntry.objects.filter(action="export.list").exists()


def test_operators_paste_addresses_and_domains_to_suppress(owner_client):
    response = owner_client.post(
        reverse("audience:suppression"),
        {"entries": "Spam@Example.com\n@spam.example\nnot an address\n\nspam@example.com"},
    )
    assert response.status_code == 302
    assert Suppression.objects.get().email_hmac == email_hmac("spam@example.com")
    assert SuppressedDomain.objects.get().domain == "spam.example"
    page = owner_client.get(reverse("audience:suppression"), {"check": "SPAM@example.com"})
    assert page.context["checked"]["entry"] is not None
    messages = [str(m) for m in page.context["messages"]]
    assert any("line(s) 3" in m for m in messages)


def test_removing_a_suppression_is_audited_without_the_address(owner_client):
    owner_client.post(reverse("audience:suppression"), {"entries": "gone@example.com"})
    entry = Suppression.objects.get()
    owner_client.post(reverse("audience:suppression-remove"), {"kind": "address", "id": entry.pk})
    assert not Suppression.objects.exists()
    removed = AuditEntry.objects.get(action="suppression.removed")
    assert "gone@" not in str(removed.details)


@pytest.mark.parametrize("name", ["audience:contacts", "audience:lists", "audience:suppression"])
def test_operator_pages_send_strangers_to_sign_in(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_contacts_store_no_field_the_purpose_does_not_collect():
    from tidings.audience.actions import FieldNotAllowed

    with pytest.raises(FieldNotAllowed, match="may not collect: religion"):
        do_create_contact(
            {"name": "X", "email": "x@example.com", "religion": "y"}, purpose="newsletter"
        )
    assert not Contact.objects.exists()


@pytest.mark.parametrize("name", ["   ", "\u00a0", "\t\n"])
def test_a_required_name_of_only_white_space_is_missing(name):
    """A name of spaces (or a no-break space) was stored, and broke rendering for that person."""
    from tidings.audience.actions import FieldNotAllowed

    with pytest.raises(FieldNotAllowed, match="missing required field"):
        do_create_contact({"name": name, "email": "b@example.org"}, purpose="newsletter")
    assert not Contact.objects.exists()


def test_the_dashboard_shows_the_audience_in_figures(owner_client, news):
    ada = person("Ada Lovelace", "ada@example.com")
    do_subscribe(ada, news, source="form", wording_text="Yes", confirmed=True)
    bob = person("Bob Pending", "bob@example.com")
    do_subscribe(bob, news, source="form", wording_text="Yes", confirmed=False)
    audience = owner_client.get(reverse("web:dashboard")).context["audience"]
    assert (audience["contacts"], audience["confirmed"], audience["pending"]) == (2, 1, 1)
    assert audience["joined"] == 1 and audience["left"] == 0


def test_a_suppressed_domain_covers_its_subdomains_but_not_its_parent():
    from tidings.audience.suppression import do_add_suppressions, is_suppressed

    do_add_suppressions(["example.co.uk"])
    assert is_suppressed("a@example.co.uk")
    assert is_suppressed("a@mail.example.co.uk")
    assert not is_suppressed("a@co.uk")
    assert not is_suppressed("a@notexample.co.uk")


def test_a_contact_page_lists_the_campaigns_the_person_received(owner_client, news):
    from tidings.campaigns.models import Campaign, Delivery

    ada = person("Ada Lovelace", "ada@example.com")
    campaign = Campaign.objects.create(name="November news", subject="News", topic="product news")
    Delivery.objects.create(campaign=campaign, contact=ada, status="sent")
    page = owner_client.get(reverse("audience:contact", args=[ada.pk])).content.decode()
    assert "November news" in page and "Sent" in page


def test_contacts_are_found_by_address_whatever_its_case_through_the_email_key_index():
    ada = person("Ada Lovelace", "Ada.Lovelace@Example.com")
    assert Contact.objects.with_email("ada.lovelace@EXAMPLE.COM").get() == ada
    zoe = person("Zoë", "zoë@example.com")  # SQLite's lower() folds ASCII only
    assert Contact.objects.with_email("ZOË@example.com").get() == zoe
    sql = str(Contact.objects.with_email("x@example.com").query).upper()
    assert "EMAIL_KEY" in sql and "LOWER" not in sql and "UPPER" not in sql


def test_the_search_finds_an_address_by_its_start_whatever_its_case():
    zoe = person("Zoë", "zoë@example.com")
    assert list(search_contacts("ZOË@")) == [zoe]


def _edit_page_fields(client, contact) -> dict[str, str]:
    """What the edit page posts back untouched: each field and its hidden ``initial-`` copy."""
    form = client.get(reverse("audience:contact-edit", args=[contact.pk])).context["form"]
    fields = {name: form[name].value() or "" for name in form.fields}
    return fields | {f"initial-{name}": value for name, value in fields.items()}


def test_two_operators_editing_one_contact_keep_both_changes(owner_client):
    # Both open the page; one corrects the name, the other then adds the company.  The second
    # save used to write back every field as its page showed it: the new name was undone.
    ada = person("Ada Lovelace", "ada@example.com")
    first = _edit_page_fields(owner_client, ada)
    second = dict(first)
    owner_client.post(reverse("audience:contact-edit", args=[ada.pk]), first | {"name": "Ada King"})
    response = owner_client.post(
        reverse("audience:contact-edit", args=[ada.pk]), second | {"company": "Engines"}
    )
    assert response.status_code == 302
    ada.refresh_from_db()
    assert (ada.name, ada.company) == ("Ada King", "Engines")


def test_an_edit_of_a_field_someone_changed_meanwhile_is_refused_and_says_so(owner_client):
    ada = person("Ada Lovelace", "ada@example.com")
    stale = _edit_page_fields(owner_client, ada)
    owner_client.post(reverse("audience:contact-edit", args=[ada.pk]), stale | {"name": "Ada King"})
    response = owner_client.post(
        reverse("audience:contact-edit", args=[ada.pk]), stale | {"name": "Countess Lovelace"}
    )
    assert response.status_code == 200
    assert "Someone else changed Name since you opened this page" in response.content.decode()
    ada.refresh_from_db()
    assert ada.name == "Ada King"
    # The page now carries what the name reads: saving again is a deliberate overwrite.
    form = response.context["form"]
    again = {k: v for k, v in form.data.items() if k != "csrfmiddlewaretoken"}
    assert again["initial-name"] == "Ada King"
    owner_client.post(reverse("audience:contact-edit", args=[ada.pk]), again)
    ada.refresh_from_db()
    assert ada.name == "Countess Lovelace"
