"""The public privacy notice, /privacy, and its machine-readable twin, /privacy.json."""

from __future__ import annotations

import html
import itertools
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.http import HttpResponse
from django.urls import URLResolver, include, path

import tidings.urls
from tidings.policy import get_policy, load_policy
from tidings.policy.commands import EXAMPLE_POLICY
from tidings.policy.plain import lawful_basis_text, retention_notes, retention_text
from tidings.policy.records import RECORD_KINDS
from tidings.policy.schema import SENSITIVE_TEXT

EXAMPLE_TEXT = EXAMPLE_POLICY.read_text(encoding="utf-8")

# The notice also says where data came from as the records show it (imports): pages read them.
pytestmark = pytest.mark.django_db


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the example policy"
    return text.replace(old, new)


@pytest.fixture
def use_policy(tmp_path, settings):
    """Point the installation at a policy file with the given text."""

    def use(text: str) -> Path:
        file = tmp_path / "policy.toml"
        file.write_text(text, encoding="utf-8")
        settings.TIDINGS_POLICY = file
        load_policy(file)  # fail here, clearly, if a test wrote an invalid policy
        return file

    return use


def page_text(response) -> str:
    """The page's HTML with entities decoded, so phrases can be looked for as written."""
    assert response.status_code == 200
    return html.unescape(response.content.decode())


class Outline(HTMLParser):
    """What the accessibility tests look at: headings, ids, in-page links, tables."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[int] = []
        self.ids: list[str] = []
        self.fragment_links: list[str] = []
        self.tables = 0
        self.captions = 0
        self.header_cells_without_scope = 0
        self.link_alternates: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self.headings.append(int(tag[1]))
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if tag == "a" and (a.get("href") or "").startswith("#"):
            self.fragment_links.append((a["href"] or "")[1:])
        if tag == "table":
            self.tables += 1
        if tag == "caption":
            self.captions += 1
        if tag == "th" and a.get("scope") not in {"col", "row"}:
            self.header_cells_without_scope += 1
        if tag == "link" and a.get("rel") == "alternate":
            self.link_alternates.append(a)


def outline(response) -> Outline:
    parser = Outline()
    parser.feed(response.content.decode())
    return parser


# --- what the notice says -------------------------------------------------------------------


def test_the_notice_is_public_and_says_who_the_controller_is(client):
    text = page_text(client.get("/privacy"))

    c = get_policy().controller
    for value in (c.name, c.address, c.email, c.phone, c.website):
        assert value in text
    assert 'href="mailto:privacy@example.co.uk"' in text
    assert 'href="tel:01244000000"' in text


def test_the_notice_says_when_it_was_last_updated_as_a_date(client):
    text = page_text(client.get("/privacy"))

    assert '<time datetime="2020-09-23">23 September 2020</time>' in text


def test_every_purpose_appears_with_its_fields_basis_and_sources(client):
    text = page_text(client.get("/privacy"))

    policy = get_policy()
    for purpose in policy.purposes.values():
        assert purpose.title in text
        name, explanation = lawful_basis_text(purpose.lawful_basis)
        assert f"{name}: {explanation}." in text
        for field in purpose.collects.all:
            label = field.replace("_", " ").capitalize()
            category = (policy.category_of(field) or "").replace("_", " ").capitalize()
            assert f'<th scope="row">{label}</th><td>{category}</td>' in text
        for source in purpose.sources:
            assert f"<li>{source[0].upper()}{source[1:]}</li>" in text


def test_each_field_is_marked_required_or_optional_with_its_category(client):
    text = page_text(client.get("/privacy"))

    # The enquiry form needs a name; the company is up to you.
    assert '<th scope="row">Name</th><td>Identity</td><td>Required</td>' in text
    assert '<th scope="row">Company</th><td>Employment</td><td>Optional</td>' in text


def test_every_processor_appears_with_its_role_and_the_country_where_it_holds_data(client):
    text = page_text(client.get("/privacy"))

    for processor in get_policy().processors.values():
        assert processor.name in text
        assert f"{processor.name} — {processor.role} — data held in: {processor.location_name}" in (
            text
        )
    assert "United States" in text
    assert "United Kingdom" in text


def test_international_transfers_are_listed_with_their_safeguards(client):
    text = page_text(client.get("/privacy"))

    assert (
        "Third-party database hosting provider (United States): standard contractual clauses"
        in text
    )
    assert "Helpdesk software (United States): standard contractual clauses" in text
    # The UK is not a transfer.
    assert "Own mail servers (United Kingdom):" not in text


def test_every_retention_rule_appears_in_plain_english_with_its_notes(client):
    text = page_text(client.get("/privacy"))

    policy = get_policy()
    for kind in policy.retention:
        phrase = retention_text(policy, kind)
        label = RECORD_KINDS[kind].label
        assert f">{label}</th><td>{phrase[0].upper()}{phrase[1:]}</td>" in text
        for note in retention_notes(policy, kind):
            assert note in text
    assert "12 months after our last contact with you" in text
    assert "6 years after the order was placed" in text


def test_every_sensitive_category_is_named_with_what_happens_if_it_is_sent(client):
    text = page_text(client.get("/privacy"))

    for category in get_policy().sensitive.categories:
        assert f"<li>{SENSITIVE_TEXT[category]}</li>" in text
    # on_detect = "redact"
    assert "we remove it before we store the rest" in text
    assert "never what it was" in text


def test_marketing_consent_is_per_channel_and_topic_and_withdrawn_with_one_click(client):
    text = page_text(client.get("/privacy"))

    for channel in ("Email", "Phone", "Post"):
        assert f"<li>{channel}</li>" in text
    for topic in ("Product news", "Events and webinars", "Training"):
        assert f"<li>{topic}</li>" in text
    assert "separately for each channel and each topic, and never assume it" in text
    assert "withdraw your consent at any time with one click" in text


def test_email_tracking_is_disclosed_and_can_be_refused(client):
    text = page_text(client.get("/privacy"))

    assert "record opens and clicks, to improve our emails" in text
    assert "You can refuse this tracking at any time" in text


def test_double_opt_in_is_explained_for_the_purposes_that_use_it(client):
    text = page_text(client.get("/privacy"))

    assert text.count("Double opt-in:") == 1  # only the newsletter uses it


def test_a_non_identifying_purpose_says_no_ip_address_or_identifier_is_stored(client):
    text = page_text(client.get("/privacy"))

    assert "We store this without your IP address or any other identifier" in text
    assert "We do not use cookies for website statistics" in text
    assert "We record pages visited and user agent without your IP address" in text


def test_all_the_rights_are_listed_with_how_to_use_them(client):
    text = page_text(client.get("/privacy"))

    for right in (
        "Access",
        "Rectification",
        "Erasure",
        "Restriction",
        "Portability",
        "Objection",
        "Withdrawing consent",
        "Complaint",
    ):
        assert f"<dt>{right}</dt>" in text
    assert "We respond within 30 days." in text
    assert "up to 60 more days" in text
    assert "we check that you are the person it is about" in text
    # Erasure has an exception: orders are a legal minimum.
    assert "even if you ask us to erase them: orders and invoices" in text


def test_the_supervisory_authority_is_named_and_linked(client):
    text = page_text(client.get("/privacy"))

    assert "Information Commissioner's Office" in text
    assert '<a href="https://ico.org.uk">Information Commissioner\'s Office</a>' in text


def test_without_a_rights_request_form_people_are_told_to_write_to_the_rights_contact(
    client, settings, monkeypatch
):
    urlconf = types.ModuleType("urls_without_rights")
    urlconf.urlpatterns = [  # type: ignore[attr-defined]
        p
        for p in tidings.urls.urlpatterns
        if not (isinstance(p, URLResolver) and p.namespace == "rights")
    ]
    monkeypatch.setitem(sys.modules, urlconf.__name__, urlconf)
    settings.ROOT_URLCONF = urlconf.__name__

    text = page_text(client.get("/privacy"))

    assert "rights request form" not in text
    assert '<p>Write to <a href="mailto:privacy@example.co.uk">' in text


def test_when_the_rights_app_provides_a_request_form_the_notice_links_to_it(
    client, settings, monkeypatch
):
    def request_form(request):
        return HttpResponse("form")

    urlconf = types.ModuleType("urls_with_rights")
    urlconf.urlpatterns = [  # type: ignore[attr-defined]
        p
        for p in tidings.urls.urlpatterns
        if not (isinstance(p, URLResolver) and p.namespace == "rights")
    ] + [
        path(
            "your-rights/",
            include(([path("request", request_form, name="request")], "rights")),
        )
    ]
    monkeypatch.setitem(sys.modules, urlconf.__name__, urlconf)
    settings.ROOT_URLCONF = urlconf.__name__

    text = page_text(client.get("/privacy"))

    assert '<a href="/your-rights/request">rights request form</a>' in text


# --- the notice follows the policy file -----------------------------------------------------


def test_the_page_changes_when_the_policy_file_changes(client, use_policy):
    text = EXAMPLE_TEXT
    text = replace_once(text, 'version = "2020-09-23"', 'version = "2024-02-29"')
    text = replace_once(text, 'name = "Example Software Ltd"', 'name = "Otherco Widgets plc"')
    text = replace_once(
        text,
        'processors = []\nrecord = "page_view"',
        'processors = ["stats_host"]\nrecord = "page_view"',
    )
    text = replace_once(
        text,
        "[processors.helpdesk]",
        '[processors.stats_host]\nname = "Berlin Statistik GmbH"\nrole = "stores visit counts"\n'
        'location = "DE"\n\n[processors.helpdesk]',
    )
    text = replace_once(
        text, '[retention.enquiry]\nkeep = "12 months"', '[retention.enquiry]\nkeep = "18 months"'
    )
    text = replace_once(text, '"training"]', '"training", "customer case studies"]')
    use_policy(text)

    page = page_text(client.get("/privacy"))

    assert "Otherco Widgets plc" in page
    assert "29 February 2024" in page
    assert "Berlin Statistik GmbH — stores visit counts — data held in: Germany" in page
    assert "18 months after our last contact with you" in page
    assert "<li>Customer case studies</li>" in page
    assert "Example Software Ltd" not in page
    assert "23 September 2020" not in page
    assert "12 months after our last contact with you" not in page
    # Germany has an adequacy decision: no transfer to list.
    assert "Berlin Statistik GmbH (Germany):" not in page


def test_a_policy_that_rejects_sensitive_data_says_so(client, use_policy):
    use_policy(replace_once(EXAMPLE_TEXT, 'on_detect = "redact"', 'on_detect = "reject"'))

    text = page_text(client.get("/privacy"))

    assert "we refuse it" in text
    assert "we remove it before we store the rest" not in text


def test_a_version_that_is_not_a_date_is_shown_as_it_is(client, use_policy):
    use_policy(replace_once(EXAMPLE_TEXT, 'version = "2020-09-23"', 'version = "7b"'))

    text = page_text(client.get("/privacy"))

    assert "Version: 7b." in text
    assert "Last updated" not in text


def test_a_data_protection_officer_is_named_when_the_policy_has_one(client, use_policy):
    use_policy(
        replace_once(
            EXAMPLE_TEXT,
            'phone = "01244 000 000"',
            'phone = "01244 000 000"\ndpo = "Dana Protector, dpo@example.co.uk"',
        )
    )

    text = page_text(client.get("/privacy"))

    assert "<dt>Data protection officer</dt>" in text
    assert "Dana Protector, dpo@example.co.uk" in text


def test_without_an_analytics_purpose_the_notice_says_no_visit_statistics_are_kept(
    client, use_policy
):
    start = EXAMPLE_TEXT.index("[purposes.analytics]")
    end = EXAMPLE_TEXT.index("# Marketing consent")
    use_policy(EXAMPLE_TEXT[:start] + EXAMPLE_TEXT[end:])

    text = page_text(client.get("/privacy"))

    assert "We do not collect statistics about visits to our website." in text


def test_text_from_the_policy_is_escaped(client, use_policy):
    use_policy(
        replace_once(
            EXAMPLE_TEXT, 'name = "Example Software Ltd"', 'name = "<script>alert(1)</script>"'
        )
    )

    body = client.get("/privacy").content.decode()

    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


# --- accessible structure -------------------------------------------------------------------


def test_the_page_has_one_h1_and_headings_that_never_skip_a_level(client):
    headings = outline(client.get("/privacy")).headings

    assert headings.count(1) == 1
    assert headings[0] == 1
    for before, after in itertools.pairwise(headings):
        assert after <= before + 1


def test_every_table_has_a_caption_and_every_header_cell_a_scope(client):
    page = outline(client.get("/privacy"))

    assert page.tables >= 3
    assert page.captions == page.tables
    assert page.header_cells_without_scope == 0


def test_the_table_of_contents_links_to_sections_that_exist(client):
    page = outline(client.get("/privacy"))
    text = page_text(client.get("/privacy"))

    assert len(page.ids) == len(set(page.ids))
    for target in page.fragment_links:
        assert target in page.ids
    for anchor in ("who-we-are", "what-we-collect", "retention", "sensitive", "rights"):
        assert f'<li><a href="#{anchor}">' in text


def test_the_notice_points_machines_at_its_json(client):
    response = client.get("/privacy")

    alternates = outline(response).link_alternates
    assert alternates == [
        {
            "rel": "alternate",
            "type": "application/json",
            "href": "/privacy.json",
            "title": "This privacy notice as data",
        }
    ]
    assert 'href="/privacy.json" type="application/json">' in page_text(response)


# --- HTTP -----------------------------------------------------------------------------------


def test_the_notice_may_be_cached_publicly_for_five_minutes(client):
    response = client.get("/privacy")

    assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=300"}
    assert response["ETag"]


def test_a_client_with_the_current_etag_gets_304_not_modified(client):
    etag = client.get("/privacy")["ETag"]

    response = client.get("/privacy", headers={"if-none-match": etag})

    assert response.status_code == 304
    assert response.content == b""


def test_the_etag_changes_when_the_policy_changes(client, use_policy):
    before = client.get("/privacy")["ETag"]
    use_policy(replace_once(EXAMPLE_TEXT, 'version = "2020-09-23"', 'version = "2021-01-01"'))

    response = client.get("/privacy", headers={"if-none-match": before})

    assert response.status_code == 200
    assert response["ETag"] != before


@pytest.mark.django_db
def test_a_signed_in_operator_gets_a_private_copy_that_shared_caches_must_not_keep(
    owner_client,
):
    response = owner_client.get("/privacy")

    assert response.status_code == 200
    assert "private" in response["Cache-Control"]
    assert "public" not in response["Cache-Control"]


@pytest.mark.parametrize("url", ["/privacy", "/privacy.json"])
def test_the_notice_can_only_be_read_not_posted_to(client, url):
    assert client.post(url).status_code == 405
    assert client.head(url).status_code == 200


# --- /privacy.json --------------------------------------------------------------------------


def test_the_json_is_the_policy_plus_its_derived_wording(client):
    response = client.get("/privacy.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    policy = get_policy()
    assert data["version"] == "2020-09-23"
    assert data["updated"] == "2020-09-23"
    assert data["sha256"] == policy.sha256
    assert len(data["sha256"]) == 64
    assert set(data) >= {
        "controller",
        "categories",
        "sensitive",
        "processors",
        "purposes",
        "marketing",
        "retention",
        "rights",
    }
    assert data["controller"]["name"] == "Example Software Ltd"
    assert data["controller"]["supervisory_authority"]["url"] == "https://ico.org.uk"
    assert list(data["purposes"]) == list(policy.purposes)
    assert data["purposes"]["enquiry"]["collects"]["required"] == ["name", "email"]
    assert data["purposes"]["newsletter"]["lawful_basis_text"] == lawful_basis_text("consent")[1]
    assert data["processors"]["crm_host"]["location"] == "US"
    assert data["processors"]["crm_host"]["location_name"] == "United States"
    assert data["processors"]["crm_host"]["international_transfer"] is True
    assert data["processors"]["mail_host"]["location_name"] == "United Kingdom"
    assert data["processors"]["mail_host"]["international_transfer"] is False
    assert data["sensitive"]["labels"][0] == "racial or ethnic origin"
    assert "source" not in data  # the server's file path is nobody's business


def test_the_json_gives_every_retention_rule_in_plain_english(client):
    data = client.get("/privacy.json").json()

    policy = get_policy()
    assert list(data["retention"]) == list(policy.retention)
    for kind, rule in data["retention"].items():
        assert rule["label"] == RECORD_KINDS[kind].label
        assert rule["text"] == retention_text(policy, kind)
        assert rule["notes"] == retention_notes(policy, kind)
    assert data["retention"]["order"]["minimum"] is True
    assert data["retention"]["enquiry"]["keep"] == "12 months"


def test_the_json_is_cacheable_and_readable_from_other_sites(client):
    response = client.get("/privacy.json")

    assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=300"}
    assert response["Access-Control-Allow-Origin"] == "*"
    assert client.get("/privacy.json", headers={"if-none-match": response["ETag"]}).status_code == (
        304
    )


def test_the_json_follows_the_policy_file(client, use_policy):
    file = use_policy(
        replace_once(EXAMPLE_TEXT, 'name = "Example Software Ltd"', 'name = "Otherco Widgets plc"')
    )

    data = client.get("/privacy.json").json()

    assert data["controller"]["name"] == "Otherco Widgets plc"
    assert data["sha256"] == load_policy(file).sha256
    assert data["sha256"] != load_policy(EXAMPLE_POLICY).sha256


@pytest.mark.django_db
@pytest.mark.parametrize("cookies_in_policy", [True, False], ids=["example", "no cookies listed"])
def test_every_cookie_the_public_pages_set_is_named_in_the_notice(
    client, use_policy, cookies_in_policy
):
    # The public forms (/contact, /rights/, the preference-link page) set Django's CSRF cookie,
    # for a year; a policy listing no cookies got a notice saying "Our website uses no
    # cookies", and the example's cookie table left it out.
    text = EXAMPLE_TEXT
    if not cookies_in_policy:
        start = text.index("[purposes.analytics]")
        end = text.index("# Marketing consent")
        text = text[:start] + text[end:]
        text = text[: text.index("# Cookies the website sets.")]
    use_policy(text)
    set_cookies = set()
    for url in ("/contact", "/rights/", "/p/", "/privacy", "/archive/"):
        response = client.get(url)
        assert response.status_code == 200, url
        set_cookies |= set(response.cookies)
        client.cookies.clear()
    assert set_cookies  # the forms do set one
    notice = client.get("/privacy").text
    assert "uses no cookies" not in notice
    for name in set_cookies:
        assert f"<code>{name}</code>" in notice, name
    assert {c["name"] for c in client.get("/privacy.json").json()["own_cookies"]} == set_cookies
