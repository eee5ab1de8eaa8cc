"""HEAD wherever GET, and conditional requests: ETag, If-None-Match (304), If-Match (412)."""

from __future__ import annotations

import pytest

from tests.campaigns.lifecycle_helpers import make_list, person, subscriber
from tidings.audience.models import Contact, Subscription

from .helpers import Api, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return Api(token_for("owner"))


def head(api: Api, path: str, **headers: str):
    return api.client.head(f"/api{path}", headers={**api.headers, **headers})


def call(api: Api, method: str, path: str, body=None, **headers: str):
    kwargs = {"content_type": "application/json", "data": body} if body is not None else {}
    return getattr(api.client, method)(f"/api{path}", headers={**api.headers, **headers}, **kwargs)


# --- HEAD ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/contacts/{id}", "/contacts", "/lists", "/openapi.json"])
def test_head_answers_what_get_does_without_the_body(api, path):
    # HEAD was a 405 on every endpoint: a client checking a resource exists had to fetch it.
    ada = person("Ada Lovelace")
    path = path.format(id=ada.pk)
    got = api.get(path)
    response = head(api, path)

    assert response.status_code == 200 == got.status_code
    assert response.content == b""
    assert response["Content-Type"] == got["Content-Type"]
    assert response["Content-Length"] == str(len(got.content))
    assert response["ETag"] == got["ETag"]


def test_head_of_a_missing_resource_is_a_404_and_needs_a_token(api):
    assert head(api, "/contacts/999").status_code == 404
    assert Api(None).client.head("/api/contacts").status_code == 401


def test_head_where_get_is_not_taken_is_a_405_naming_head(api):
    response = head(api, "/tx")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    # Where GET is taken, Allow says HEAD is too.
    allowed = api.client.put("/api/contacts", headers=api.headers)["Allow"]
    assert set(allowed.split(", ")) == {"GET", "HEAD", "POST"}


def test_the_openapi_document_lists_head_beside_get(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert "head" in paths["/api/contacts/{contact_id}"]
    assert "head" not in paths["/api/tx"]
    assert "content" not in paths["/api/contacts/{contact_id}"]["head"]["responses"]["200"]


# --- ETag and If-None-Match -----------------------------------------------------------------------
def test_a_resource_carries_an_etag_that_follows_its_state(api):
    ada = person("Ada Lovelace")
    first = api.get(f"/contacts/{ada.pk}")
    assert first["ETag"].startswith('"') and first["ETag"] == api.get(f"/contacts/{ada.pk}")["ETag"]

    api.patch(f"/contacts/{ada.pk}", {"company": "Analytical Engines"})

    assert api.get(f"/contacts/{ada.pk}")["ETag"] != first["ETag"]


def test_if_none_match_with_the_current_etag_is_a_304_without_a_body(api):
    ada = person("Ada Lovelace")
    tag = api.get(f"/contacts/{ada.pk}")["ETag"]

    unchanged = call(api, "get", f"/contacts/{ada.pk}", **{"If-None-Match": tag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged["ETag"] == tag
    assert call(api, "get", f"/contacts/{ada.pk}", **{"If-None-Match": "*"}).status_code == 304

    api.patch(f"/contacts/{ada.pk}", {"company": "Analytical Engines"})
    changed = call(api, "get", f"/contacts/{ada.pk}", **{"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["company"] == "Analytical Engines"


# --- If-Match -------------------------------------------------------------------------------------
def test_a_patch_with_the_current_etag_is_done_and_answers_the_new_one(api):
    ada = person("Ada Lovelace")
    tag = api.get(f"/contacts/{ada.pk}")["ETag"]

    response = call(
        api, "patch", f"/contacts/{ada.pk}", {"company": "Engines"}, **{"If-Match": tag}
    )

    assert response.status_code == 200
    assert response["ETag"] == api.get(f"/contacts/{ada.pk}")["ETag"] != tag


def test_a_patch_with_a_stale_etag_is_a_412_and_changes_nothing(api):
    # Two clients read the contact; the second one's correction no longer overwrites the first's.
    ada = person("Ada Lovelace")
    tag = api.get(f"/contacts/{ada.pk}")["ETag"]
    assert api.patch(f"/contacts/{ada.pk}", {"company": "First"}).status_code == 200

    late = call(api, "patch", f"/contacts/{ada.pk}", {"company": "Second"}, **{"If-Match": tag})

    assert late.status_code == 412
    assert late["Content-Type"] == "application/problem+json"
    assert late.json()["title"] == "Precondition failed"
    assert late["ETag"] == api.get(f"/contacts/{ada.pk}")["ETag"]
    assert Contact.objects.get(pk=ada.pk).company == "First"
    weak = call(
        api,
        "patch",
        f"/contacts/{ada.pk}",
        {"company": "Third"},
        **{"If-Match": f"W/{late['ETag']}"},
    )
    assert weak.status_code == 412  # If-Match compares strongly


def test_without_if_match_a_patch_is_done_as_before(api):
    ada = person("Ada Lovelace")
    assert api.patch(f"/contacts/{ada.pk}", {"company": "First"}).status_code == 200
    assert (
        call(
            api, "patch", f"/contacts/{ada.pk}", {"company": "Any"}, **{"If-Match": "*"}
        ).status_code
        == 200
    )
    assert Contact.objects.get(pk=ada.pk).company == "Any"


def test_a_subscription_is_read_and_unsubscribed_only_while_its_etag_is_current(api):
    news = make_list()
    ada = subscriber("Ada Lovelace", news)
    path = f"/lists/{news.pk}/subscriptions/{ada.pk}"
    read = api.get(path)
    assert read.status_code == 200
    assert read.json()["status"] == "confirmed"

    stale = call(api, "delete", path, **{"If-Match": '"not-this-version"'})
    assert stale.status_code == 412
    assert stale["ETag"] == read["ETag"]
    assert Subscription.objects.get(contact=ada).status == "confirmed"

    done = call(api, "delete", path, **{"If-Match": read["ETag"]})
    assert done.json() == {"unsubscribed": True}
    # The subscription changed (unsubscribed): the tag read before it no longer matches.
    assert call(api, "delete", path, **{"If-Match": read["ETag"]}).status_code == 412
    assert api.get(path).json()["status"] == "unsubscribed"
    assert api.get(f"/lists/{news.pk}/subscriptions/999").status_code == 404
    assert (
        call(
            api, "delete", f"/lists/{news.pk}/subscriptions/{person('Bo').pk}", **{"If-Match": "*"}
        ).status_code
        == 412
    )  # no subscription to match


def test_head_of_the_bad_rows_report_records_no_export(api, tmp_path, settings):
    from tidings.audience.models import Import
    from tidings.lib.models import AuditEntry

    settings.DATA_DIR = tmp_path
    imp = Import.objects.create(
        mailing_list=make_list(), status=Import.Status.FINISHED, report_file="bad.csv"
    )
    report = imp.report_path
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("row,reason\n2,not an address\n")

    response = head(api, f"/imports/{imp.pk}/bad-rows")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Length"] == str(report.stat().st_size)
    assert not AuditEntry.objects.filter(action="export.import_report").exists()
    assert api.get(f"/imports/{imp.pk}/bad-rows").status_code == 200
    assert AuditEntry.objects.filter(action="export.import_report").count() == 1
