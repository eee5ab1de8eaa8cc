"""The contacts API: create, read, update and search, with tokens, scopes and roles."""

from __future__ import annotations

import pytest

from tidings.audience.models import Contact
from tidings.lib.models import AuditEntry

from .helpers import Api, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return Api(token_for("owner"))


def test_a_contact_is_created_then_read_back(api):
    created = api.post("/contacts", {"email": "Ada@Example.COM", "name": "Ada Lovelace"})
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "Ada@example.com"
    assert body["name"] == "Ada Lovelace"
    read = api.get(f"/contacts/{body['id']}")
    assert read.status_code == 200
    assert read.json()["id"] == body["id"]


def test_creating_an_existing_address_returns_that_contact_with_200(api):
    first = api.post("/contacts", {"email": "grace@example.com", "name": "Grace"}).json()
    again = api.post("/contacts", {"email": "GRACE@example.com", "name": "G"})
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert Contact.objects.count() == 1


def test_creating_a_contact_is_audited_without_the_values(api):
    api.post("/contacts", {"email": "alan@example.com", "name": "Alan Turing"})
    entry = AuditEntry.objects.get(action="contact.created")
    assert entry.actor_label.startswith("api:")
    assert "alan" not in str(entry.details).lower()


def test_a_field_the_policy_does_not_collect_is_refused_as_a_problem(api):
    response = api.post("/contacts", {"email": "x@example.com", "attributes": {"religion": "none"}})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "religion" in response.json()["detail"]


def test_invalid_input_lists_each_field_in_a_problem_document(api):
    response = api.post("/contacts", {"name": 42})
    assert response.status_code == 422
    problem = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert problem["status"] == 422
    fields = {e["field"] for e in problem["errors"]}
    assert "email" in fields


def test_update_rectifies_fields_and_refuses_a_taken_address(api):
    ada = api.post("/contacts", {"email": "ada@example.com", "name": "Ada"}).json()
    api.post("/contacts", {"email": "grace@example.com", "name": "Grace"})
    changed = api.patch(f"/contacts/{ada['id']}", {"name": "Ada King"})
    assert changed.status_code == 200
    assert changed.json()["name"] == "Ada King"
    taken = api.patch(f"/contacts/{ada['id']}", {"email": "grace@example.com"})
    assert taken.status_code == 409
    assert taken["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("name", ["", "   ", None, "\u200b"])
def test_a_required_name_cannot_be_emptied_and_the_problem_names_the_field(api, name):
    """The same rule as a rights request's correction: changed, yes; emptied, never."""
    ada = api.post("/contacts", {"email": "ada@example.com", "name": "Ada"}).json()

    response = api.patch(f"/contacts/{ada['id']}", {"name": name, "company": "Engines"})

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"] == [
        {"field": "name", "message": "Name cannot be left empty: write the correct one"}
    ]
    assert (Contact.objects.get().name, Contact.objects.get().company) == ("Ada", "")


def test_an_unknown_contact_is_a_404_problem(api):
    response = api.get("/contacts/999999")
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no contact 999999."


def test_search_finds_by_address_and_name_start_and_pages_with_a_cursor(api):
    for n in range(5):
        api.post("/contacts", {"email": f"ada{n}@example.com", "name": f"Ada Number{n}"})
    api.post("/contacts", {"email": "grace@example.com", "name": "Grace Hopper"})
    assert [c["email"] for c in api.get("/contacts", search="grace@").json()["items"]] == [
        "grace@example.com"
    ]
    assert len(api.get("/contacts", search="hopper").json()["items"]) == 1
    first = api.get("/contacts", search="ada", limit=3).json()
    assert len(first["items"]) == 3
    rest = api.get("/contacts", search="ada", limit=3, cursor=first["next"]).json()
    assert len(rest["items"]) == 2
    assert rest["next"] is None
    seen = {c["id"] for c in first["items"]} | {c["id"] for c in rest["items"]}
    assert len(seen) == 5


def test_a_cursor_that_was_not_given_out_is_refused(api):
    response = api.get("/contacts", cursor="abc")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["query.cursor"]


def test_an_unknown_query_parameter_is_a_422_naming_it(api):
    """``?serch=ada`` was ignored: the client got every contact and thought it had searched."""
    api.post("/contacts", {"email": "ada@example.com", "name": "Ada Lovelace"})
    response = api.get("/contacts", serch="ada", limit=5)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in response.json()["errors"]] == ["query.serch"]
    assert "query.serch" in response.json()["detail"]
    # What the endpoint documents is still taken.
    documented = api.get("/contacts", search="ada", limit=5, cursor="")
    assert documented.status_code == 200 and len(documented.json()["items"]) == 1
    assert api.get("/contacts/999999", verbose="1").status_code == 422  # no query at all


def test_without_a_token_the_answer_is_401_with_www_authenticate():
    response = Api(None).get("/contacts")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Content-Type"] == "application/problem+json"


def test_a_wrong_or_revoked_token_is_401(api):
    from tidings.api.actions import do_revoke_api_token
    from tidings.api.models import ApiToken

    assert Api("tid_not-a-token").get("/contacts").status_code == 401
    text = token_for("owner", username="second")
    token = ApiToken.objects.get(operator__username="second")
    assert Api(text).get("/contacts").status_code == 200
    do_revoke_api_token(token, actor=None)
    assert Api(text).get("/contacts").status_code == 401


def test_a_token_without_the_scope_is_refused_with_403():
    reader = Api(token_for("owner", scopes=("read",)))
    response = reader.post("/contacts", {"email": "x@example.com"})
    assert response.status_code == 403
    assert "'write' scope" in response.json()["detail"]


def test_a_token_can_never_do_more_than_its_operators_role():
    analyst = Api(token_for("analyst"))  # every scope, but analysts see no personal data
    response = analyst.get("/contacts")
    assert response.status_code == 403
    assert "people" in response.json()["detail"]


def test_a_token_records_when_it_was_last_used(api):
    from tidings.api.models import ApiToken

    api.get("/contacts")
    assert ApiToken.objects.get().last_used_at is not None


def test_only_a_hash_of_the_token_is_stored():
    from tidings.api.models import ApiToken

    text = token_for("owner")
    stored = ApiToken.objects.get()
    assert text not in (stored.token_hash, stored.prefix)
    assert len(stored.token_hash) == 64


def test_too_many_requests_get_429_with_retry_after(settings, api):
    from django.core.cache import cache

    cache.clear()
    settings.TIDINGS_API_RATE_LIMIT = 3
    settings.TIDINGS_API_RATE_WINDOW = 60
    codes = [api.get("/contacts").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = api.get("/contacts")
    assert int(limited["Retry-After"]) >= 1
    assert limited["Content-Type"] == "application/problem+json"
    cache.clear()


def test_an_address_with_a_slash_added_is_a_404_naming_the_address_meant(api):
    """It said only "There is no API endpoint at this address", for the commonest slip."""
    response = api.get("/contacts/")
    assert response.status_code == 404
    assert response.json()["detail"].endswith("end without a slash: /api/contacts")
    contact = api.post("/contacts", {"email": "ada@example.com", "name": "Ada"}).json()
    response = api.get(f"/contacts/{contact['id']}/subscriptions/")
    assert response.json()["detail"].endswith(f"/api/contacts/{contact['id']}/subscriptions")
    assert api.get("/nothing/").json()["detail"] == "There is no API endpoint at this address."


@pytest.mark.parametrize("path", ["/no-such-thing", "/"])
def test_an_unknown_api_address_is_a_404_problem(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"].startswith("There is no API endpoint at this address")


def test_a_contact_read_and_a_search_page_take_two_queries_each(
    api, settings, django_assert_num_queries
):
    settings.TIDINGS_API_RATE_LIMIT = 0
    ids = [
        api.post("/contacts", {"email": f"p{n}@example.com", "name": "P"}).json()["id"]
        for n in range(60)
    ]
    api.get("/contacts")  # the token's last-used time is written at most once a minute
    with django_assert_num_queries(2):  # the token with its operator's roles; the contact
        assert api.get(f"/contacts/{ids[0]}").status_code == 200
    with django_assert_num_queries(2):
        assert len(api.get("/contacts", search="p").json()["items"]) == 50


def test_a_nul_character_is_refused_clearly_rather_than_failing_in_the_database(api):
    response = api.post("/contacts", {"email": "a@example.com", "name": "A\u0000B"})
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]
    assert api.get("/contacts", search="a\x00").status_code == 422


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
@pytest.mark.parametrize("content_type", ["application/json", "application/merge-patch+json"])
def test_a_body_in_utf_16_is_a_400_saying_it_must_be_utf_8(api, encoding, content_type):
    """It answered 422 "The request contains a NUL character", which sent the client's author
    looking for a NUL in their data; with a +json type, Python's json read it without a word."""
    body = '{"email": "ada@example.com", "name": "Ada"}'.encode(encoding)
    response = api.client.post(
        "/api/contacts", body, content_type=content_type, headers=api.headers
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "not UTF-8" in detail
    assert "NUL character" not in detail
    assert not Contact.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", "email=ada%40example.com&name=Ada"),
        ("text/plain", '{"email": "ada@example.com", "name": "Ada"}'),
    ],
)
def test_a_body_sent_as_something_other_than_json_is_a_415_problem(api, content_type, body):
    response = api.client.post(
        "/api/contacts", body, content_type=content_type, headers=api.headers
    )

    assert response.status_code == 415
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["title"] == "Unsupported media type"
    assert "Content-Type: application/json" in response.json()["detail"]
    assert not Contact.objects.exists()


def test_a_json_body_with_a_json_media_type_and_charset_is_read(api):
    response = api.client.post(
        "/api/contacts",
        '{"email": "ada@example.com", "name": "Ada"}',
        content_type="application/json; charset=utf-8",
        headers=api.headers,
    )
    assert response.status_code == 201


def test_the_api_sends_no_cors_headers_so_no_web_page_elsewhere_reads_it(api):
    """As the README says: tokens belong on servers, not in web pages."""
    origin = {"Origin": "https://elsewhere.example"}
    answer = api.client.get("/api/contacts", headers={**api.headers, **origin})
    assert answer.status_code == 200
    assert not any(name.lower().startswith("access-control-") for name in answer.headers)
    preflight = api.client.options(
        "/api/contacts",
        headers={**origin, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 405
    assert not any(name.lower().startswith("access-control-") for name in preflight.headers)


def test_a_line_break_in_a_one_line_field_becomes_a_space_but_an_address_keeps_its_lines(api):
    # A name or company is edited in a one-line text box, which would silently join the lines
    # ("Acme LtdLondon") on the next save: a break sent by the API becomes a space instead.
    body = api.post(
        "/contacts", {"email": "ada@example.com", "name": "Ada\r\nLovelace", "company": "Acme\tLtd"}
    ).json()
    assert (body["name"], body["company"]) == ("Ada Lovelace", "Acme Ltd")
    api.patch(
        f"/contacts/{body['id']}",
        {"company": "Acme Ltd\nLondon", "work_address": "1 High St\nLondon"},
    )
    contact = Contact.objects.get()
    assert (contact.company, contact.work_address) == ("Acme Ltd London", "1 High St\nLondon")
