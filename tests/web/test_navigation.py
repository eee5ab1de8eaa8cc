"""The navigation: six groups instead of nineteen items in a row, the current page's item and
group marked (Segments is not Contacts), only what the role may open, a search box that respects
the role (an analyst finds no person), and /favicon.ico."""

import re

import pytest
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from tests.operators import make_operator
from tidings.audience.actions import do_create_contact
from tidings.campaigns.models import Campaign
from tidings.crm.actions import do_receive_enquiry

pytestmark = pytest.mark.django_db


def nav(page: str) -> str:
    return re.search(r'<nav class="site-nav".*?</nav>', page, re.S).group()


def groups(page: str) -> list[str]:
    return re.findall(r"<summary>([^<]+)", nav(page))


def current_items(page: str) -> list[str]:
    return re.findall(r'aria-current="[^"]+">([^<]+)</a>', nav(page))


def current_group(page: str) -> list[str]:
    return re.findall(
        r'<li class="nav-group current">\s*<details[^>]*>\s*<summary>([^<]+)', nav(page)
    )


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def test_an_owner_sees_six_groups_in_place_of_a_long_row(owner_client):
    page = owner_client.get("/").text
    assert groups(page) == ["Audience", "Campaigns", "CRM", "Website", "Privacy", "Settings"]
    assert current_items(page) == ["Dashboard"]
    assert "<details" in nav(page)  # menus that open without JavaScript


@pytest.mark.parametrize(
    ("url", "item", "group"),
    [
        ("/audience/segments/", "Segments", "Audience"),
        ("/audience/segments/new/", "Segments", "Audience"),
        ("/audience/contacts/", "Contacts", "Audience"),
        ("/campaigns/templates/", "Templates", "Campaigns"),
        ("/campaigns/templates/layouts/new/", "Templates", "Campaigns"),
        ("/campaigns/", "Campaigns", "Campaigns"),
        ("/campaigns/senders/", "Senders", "Campaigns"),
        ("/rights/audit/", "Audit log", "Privacy"),
        ("/settings/api/webhooks/", "Webhooks", "Settings"),
        ("/demos/availability/", "Demo availability", "CRM"),
    ],
)
def test_the_page_being_shown_marks_its_own_item_and_group(owner_client, url, item, group):
    page = owner_client.get(url).text
    assert current_items(page) == [item]
    assert current_group(page) == [group]


def test_every_item_an_owner_is_offered_opens(owner_client):
    links = re.findall(r'<a href="([^"]+)"', nav(owner_client.get("/").text))
    assert len(links) >= 20
    for link in links:
        assert owner_client.get(link).status_code == 200, link


@pytest.mark.parametrize("role", ["editor", "analyst", "privacy_officer"])
def test_each_role_is_offered_only_pages_it_may_open(client, role):
    client.force_login(make_operator(role, role))
    page = client.get("/").text
    links = re.findall(r'<a href="([^"]+)"', nav(page))
    for link in links:
        assert client.get(link).status_code == 200, (role, link)
    if role == "analyst":
        assert "Audience" not in groups(page) and "/audience/contacts/" not in links
        assert "Website" in groups(page)


def test_the_api_docs_name_a_menu_path_that_exists(owner_client):
    description = Client().get("/api/openapi.json").json()["info"]["description"]
    path = re.search(r"Settings → ([A-Za-z ]+?)\)", description).group(1)
    page = owner_client.get("/").text
    settings_menu = re.search(r"<summary>Settings</summary>(.*?)</details>", nav(page), re.S).group(
        1
    )
    assert f'<a href="{reverse("api_settings:tokens")}">{path}</a>' in settings_menu


# --- search ---------------------------------------------------------------------------------
@pytest.fixture
def findable(db):
    ada, _ = do_create_contact(
        {"name": "Ada Lovelace", "email": "ada@example.com"}, purpose="newsletter"
    )
    do_receive_enquiry(
        {"name": "Grace Lovelace", "email": "grace@example.org"}, channel="telephone", message="Hi"
    )
    Campaign.objects.create(name="Lovelace day", subject="Happy Lovelace day", topic="product news")
    Campaign.objects.create(
        name="Lovelace report",
        subject="Sent",
        topic="product news",
        status="finished",
        started_at="2026-01-01T00:00Z",
    )
    return ada


def test_the_search_box_finds_contacts_campaigns_and_enquiries(owner_client, findable):
    page = owner_client.get(reverse("web:search"), {"q": "lovelace"}).text
    assert reverse("audience:contact", args=[findable.pk]) in page and "ada@example.com" in page
    assert "Lovelace day" in page
    assert "Hi (#" in page and "Grace Lovelace" in page  # the enquiry, by what it says
    assert 'name="q"' in owner_client.get("/").text  # the box is on every operator page


def test_the_search_box_names_enquiries_by_their_screened_subject_in_one_query(owner_client):
    """The search box listed every enquiry as "Enquiry #12 from Grace Lovelace": the operator
    opened each to see what it was about, while My work and the lists named them by their
    (screened) subject.  Read in the same number of queries however many enquiries it finds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tidings.crm.conversations import tagged_subject
    from tidings.crm.models import ConversationMessage

    def enquiry(n: int, **kwargs):
        return do_receive_enquiry(
            {"name": f"Grace Lovelace {n}", "email": f"g{n}@example.org"},
            channel="web form",
            message="Hello there",
            **kwargs,
        )

    def found() -> tuple[int, str]:
        with CaptureQueriesContext(connection) as seen:
            page = owner_client.get(reverse("web:search"), {"q": "lovelace"}).text
        return len(seen), page[page.index('id="results-enquiries"') :]

    invoice = enquiry(1, subject="Invoice for March")
    private = enquiry(2, subject="Question. I was diagnosed with cancer.")
    plain = enquiry(3)  # no subject, nothing sent yet: the start of its message
    by_form = enquiry(4)  # no subject: our first mail's, without the conversation's tag
    ConversationMessage.objects.create(
        enquiry=by_form, direction="out", subject=tagged_subject(by_form, "Your enquiry")
    )
    before, results = found()
    for record, name in (
        (invoice, "Invoice for March"),
        (private, private.subject),
        (plain, "Hello there"),
        (by_form, "Your enquiry"),
    ):
        assert f'{reverse("crm:enquiry", args=[record.pk])}">{name} (#{record.pk})</a>' in results
    assert "[removed: health]" in private.subject and "cancer" not in results
    assert "Enquiry #" not in results and "[#E-" not in results
    assert "Grace Lovelace 1 · web form" in results  # who it is from, still shown
    for n in range(5, 10):
        record = enquiry(n)
        ConversationMessage.objects.create(
            enquiry=record, direction="out", subject=tagged_subject(record, f"Your enquiry {n}")
        )
    after, results = found()
    assert after == before and "Your enquiry 9 (#" in results


def test_an_analyst_searching_finds_no_personal_data(client, findable):
    client.force_login(make_operator("numbers", "analyst"))
    page = client.get(reverse("web:search"), {"q": "lovelace"}).text
    assert "ada@example.com" not in page and "Grace" not in page and "Ada" not in page
    assert "Enquiries" not in page and "Contacts</h2>" not in page
    report = Campaign.objects.get(name="Lovelace report")
    assert reverse("campaigns:report", args=[report.pk]) in page
    assert "Lovelace day" not in page  # never sent: no report to open
    assert client.get(reverse("campaigns:report", args=[report.pk])).status_code == 200


def test_the_full_search_links_carry_the_whole_query(owner_client, findable):
    # "?q=" + the query: a search for "R&D #2" opened the contacts page searching for "R".
    from tidings.web.search import search

    sections = {s.key: s for s in search(make_operator("boss", "owner"), "R&D #2 + ops")}

    for key, path in (("contacts", "audience:contacts"), ("enquiries", "crm:enquiries")):
        url = sections[key].more_url
        assert url == reverse(path) + "?q=R%26D+%232+%2B+ops"
        assert QueryDict(url.partition("?")[2])["q"] == "R&D #2 + ops"


def test_a_one_letter_search_asks_for_more(owner_client, findable):
    page = owner_client.get(reverse("web:search"), {"q": "l"}).text
    assert "at least two characters" in page and "ada@example.com" not in page


def test_the_site_icon_is_served_to_anyone(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert 'rel="icon"' in client.get("/privacy").text
