"""``Idempotency-Key`` on every POST that creates something (POST /tx: test_idempotency.py):
a client that retries after a timeout creates one list, one campaign, one rights request …"""

from __future__ import annotations

import json

import pytest

from tests.campaigns.lifecycle_helpers import make_list, make_template, person, subscriber
from tests.journeys.helpers import welcome
from tidings.api.models import IdempotencyKey
from tidings.audience.models import Contact, Import, MailingList, Subscription, Suppression
from tidings.campaigns.models import Campaign, OutgoingMessage
from tidings.journeys.models import Enrolment, JourneyEvent
from tidings.rights.models import RightsRequest

from .helpers import Api, token_for

pytestmark = pytest.mark.django_db

CONSENT = {"source": "checkout page", "wording": "Yes, news.", "at": "2026-03-01T10:00:00Z"}


@pytest.fixture
def api(settings):
    settings.TIDINGS_API_RATE_LIMIT = 0
    return Api(token_for("owner"))


def post(api: Api, path: str, body, key: str | None, *, raw: str | None = None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.client.post(
        f"/api{path}",
        raw if raw is not None else json.dumps(body),
        content_type="application/json",
        headers={**api.headers, **headers},
    )


def _contact():
    return "/contacts", {"email": "ada@example.com", "name": "Ada"}, Contact


def _list():
    return "/lists", {"name": "Events", "topic": "events and webinars"}, MailingList


def _subscription():
    news, ada = make_list(), person("Ada Lovelace")
    return f"/lists/{news.pk}/subscriptions", {"contact_id": ada.pk, "consent": CONSENT}, None


def _campaign():
    body = {"name": "May", "template_id": make_template().pk, "topic": "product news"}
    return "/campaigns", body, Campaign


def _suppression():
    return "/suppressions", {"email": "gone@example.com"}, Suppression


def _rights_request():
    body = {"kind": "access", "email": "ada@example.com", "verified": True}
    return "/rights-requests", body, RightsRequest


def _enrolment():
    journey = welcome()
    ann = subscriber("Ann Example", make_list("Journeys list"))
    return f"/journeys/{journey.pk}/enrolments", {"contact_id": ann.pk}, Enrolment


def _event():
    return "/events", {"contact": "nobody@example.com", "name": "trial_started"}, JourneyEvent


CREATES = [_contact, _list, _subscription, _campaign, _suppression, _rights_request, _enrolment]


@pytest.mark.parametrize("make", CREATES, ids=lambda m: m.__name__.strip("_"))
def test_a_retry_with_the_same_key_creates_nothing_and_answers_the_first_answer(api, make):
    path, body, model = make()
    before = model.objects.count() if model else Subscription.objects.count()

    first = post(api, path, body, "retry-1")
    again = post(api, path, body, "retry-1")

    assert first.status_code in (200, 201, 202), first.content
    assert "Idempotent-Replayed" not in first
    assert again.status_code == first.status_code
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"]
    assert (model.objects.count() if model else Subscription.objects.count()) == before + 1
    assert IdempotencyKey.objects.get().status_code == first.status_code


def test_a_replay_answers_the_first_status_not_what_the_work_would_answer_now(api):
    # Without the key a second POST /suppressions is a 200 "already there"; a retry of the
    # first is that first answer, a 201.
    first = post(api, "/suppressions", {"email": "gone@example.com"}, "k")
    assert first.status_code == 201
    assert post(api, "/suppressions", {"email": "gone@example.com"}, "k").status_code == 201
    assert post(api, "/suppressions", {"email": "gone@example.com"}, None).status_code == 200


def test_an_event_retried_with_the_same_key_is_recorded_once(api):
    path, body, _ = _event()
    assert post(api, path, body, "e-1").status_code == 202
    replay = post(api, path, body, "e-1")
    assert replay.status_code == 202 and replay["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_a_422_and_creates_nothing(api):
    assert (
        post(api, "/lists", {"name": "Events", "topic": "events and webinars"}, "k").status_code
        == 201
    )
    other = post(api, "/lists", {"name": "Other", "topic": "events and webinars"}, "k")
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert MailingList.objects.count() == 1
    # The key is one per token across endpoints: the same key on another address is another
    # request too.
    assert post(api, "/suppressions", {"email": "gone@example.com"}, "k").status_code == 422


def test_a_failed_create_keeps_no_answer_so_its_retry_is_done(api):
    bad = post(api, "/lists", {"name": "Events", "topic": "not a topic"}, "k")
    assert bad.status_code == 422
    assert not IdempotencyKey.objects.exists()
    assert (
        post(api, "/lists", {"name": "Events", "topic": "events and webinars"}, "k").status_code
        == 201
    )
    assert MailingList.objects.count() == 1


def test_the_same_json_serialised_differently_is_the_same_request(api):
    # A client that builds its body again for the retry (another key order, other spacing, an
    # escape for a character) is retrying the same request, not sending another.
    first = post(
        api, "/lists", None, "k", raw='{"name": "Ev\u00e9nements", "topic": "events and webinars"}'
    )
    again = post(
        api,
        "/lists",
        None,
        "k",
        raw='{\n  "topic":"events and webinars",\n  "name":"Ev\\u00e9nements"\n}',
    )
    assert first.status_code == 201
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert MailingList.objects.count() == 1


def test_the_same_json_serialised_differently_sends_one_transactional_message(api):
    template, ada = make_template(), person("Ada Lovelace")
    body = {"template_id": template.pk, "contact_id": ada.pk, "context": {"a": 1, "b": [1, 2]}}
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    assert post(api, "/tx", body, "k").status_code == 202
    assert post(api, "/tx", None, "k", raw=reordered)["Idempotent-Replayed"] == "true"
    assert OutgoingMessage.objects.count() == 1


def test_an_upload_retried_with_the_same_key_is_imported_once(api, settings, tmp_path):
    # A multipart body has a new boundary on every send: it is the fields and the file's name
    # and content that make the request.
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_DIR = tmp_path
    news = make_list()
    csv = b"email,name\nada@example.com,Ada\n"

    def upload(content: bytes):
        return api.client.post(
            "/api/imports",
            {
                "list_id": news.pk,
                "consent_source": "Sign-up sheet",
                "file": SimpleUploadedFile("people.csv", content, content_type="text/csv"),
            },
            headers={**api.headers, "Idempotency-Key": "upload-1"},
        )

    first = upload(csv)
    assert first.status_code == 202, first.content
    again = upload(csv)
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Import.objects.count() == 1
    assert upload(csv + b"bo@example.com,Bo\n").status_code == 422  # another file


def test_the_openapi_schema_documents_the_header_on_every_create(api):
    paths = api.client.get("/api/openapi.json").json()["paths"]

    def takes_key(path: str) -> bool:
        parameters = paths[f"/api{path}"]["post"].get("parameters", [])
        return any(p["name"] == "Idempotency-Key" for p in parameters)

    for path in (
        "/contacts",
        "/lists",
        "/lists/{list_id}/subscriptions",
        "/imports",
        "/campaigns",
        "/tx",
        "/suppressions",
        "/rights-requests",
        "/journeys/{journey_id}/enrolments",
        "/events",
    ):
        assert takes_key(path), path
    for path in ("/campaigns/{campaign_id}/schedule", "/segments/count", "/suppressions/check"):
        assert not takes_key(path), path


def test_a_created_contacts_data_is_not_kept_with_its_key(api):
    # The kept answer would have held the person's address and name for a day, past an
    # erasure; it holds the id, and a retry answers the contact as it is now.
    body = {"email": "ada@example.com", "name": "Ada", "company": "Engines"}
    first = post(api, "/contacts", body, "c-1")
    assert first.status_code == 201
    kept = IdempotencyKey.objects.get().response
    assert kept == {"id": first.json()["id"]}
    Contact.objects.filter(pk=first.json()["id"]).update(company="Analytical Engines")

    again = post(api, "/contacts", body, "c-1")

    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == {**first.json(), "company": "Analytical Engines"}
    Contact.objects.all().delete()  # erased since
    assert post(api, "/contacts", body, "c-1").status_code == 404
