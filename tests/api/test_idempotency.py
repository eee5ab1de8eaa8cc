"""``Idempotency-Key`` on ``POST /api/tx``: a client that retries after a timeout sends the mail
once (Stripe's header, draft-ietf-httpapi-idempotency-key-header)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import make_template, person
from tidings.api import idempotency
from tidings.api.models import IdempotencyKey
from tidings.audience.models import Suppression
from tidings.campaigns.models import OutgoingMessage
from tidings.lib.models import AuditEntry

from .helpers import Api, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    return Api(token_for("owner"))


@pytest.fixture
def order():
    template = make_template()
    ada = person("Ada Lovelace")
    return {"template_id": template.pk, "contact_id": ada.pk, "context": {"order": "A-1"}}


def tx(api: Api, body, key: str | None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.client.post(
        "/api/tx",
        json.dumps(body),
        content_type="application/json",
        headers={**api.headers, **headers},
    )


def test_a_retry_with_the_same_key_answers_the_first_answer_and_sends_nothing(api, order):
    first = tx(api, order, "order-A-1")
    assert first.status_code == 202
    again = tx(api, order, "order-A-1")
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    message = OutgoingMessage.objects.get()
    assert first.json()["message_id"] == message.pk
    assert AuditEntry.objects.filter(action="transactional.queued").count() == 1
    row = IdempotencyKey.objects.get()
    assert row.message == message  # linked to the message it sent
    # The stored answer holds ids and the status only, nothing of the request's context.
    assert row.response == {"message_id": message.pk, "status": "queued"}
    assert "A-1" not in json.dumps(row.response) + row.fingerprint


def test_without_a_key_every_request_sends(api, order):
    assert tx(api, order, None).status_code == 202
    assert tx(api, order, None).status_code == 202
    assert OutgoingMessage.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_the_same_key_with_another_body_is_a_422_and_sends_nothing(api, order):
    assert tx(api, order, "k1").status_code == 202
    other = {**order, "context": {"order": "A-2"}}
    response = tx(api, other, "k1")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [
        {"field": "Idempotency-Key", "message": "already used with a different request"}
    ]
    assert OutgoingMessage.objects.count() == 1


def test_keys_are_per_token(api, order):
    other = Api(token_for("owner", username="other-owner"))
    assert tx(api, order, "k1").status_code == 202
    response = tx(other, order, "k1")
    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response
    assert OutgoingMessage.objects.count() == 2


def test_a_key_still_being_processed_is_a_409(api, order):
    """What a concurrent retry meets (tests below race two on PostgreSQL)."""
    from django.test import RequestFactory

    from tidings.api.auth import find_token

    token = find_token(api.headers["Authorization"].removeprefix("Bearer "))
    request = RequestFactory().post("/api/tx", json.dumps(order), content_type="application/json")
    IdempotencyKey.objects.create(
        token=token, key="k1", fingerprint=idempotency.fingerprint(request)
    )
    response = tx(api, order, "k1")
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert not OutgoingMessage.objects.exists()
    # A claim left by a request that died (its work would have committed with its answer) is
    # taken over after a while.
    with time_machine.travel(timezone.now() + idempotency.ABANDONED + timedelta(seconds=1)):
        assert tx(api, order, "k1").status_code == 202
    assert OutgoingMessage.objects.count() == 1


def test_a_failed_request_keeps_no_answer_so_its_retry_is_done(api, order):
    """Only a 202 is kept: after an error nothing was sent, so the retry does the work."""
    from tidings.audience.models import Contact
    from tidings.audience.suppression import do_suppress

    do_suppress(Contact.objects.get(pk=order["contact_id"]).email, "manual")
    assert tx(api, order, "k1").status_code == 409
    assert not IdempotencyKey.objects.exists()
    Suppression.objects.all().delete()  # the operator lifts it; the client retries
    assert tx(api, order, "k1").status_code == 202
    assert OutgoingMessage.objects.count() == 1


def test_keys_expire_after_24_hours(api, order):
    assert tx(api, order, "k1").status_code == 202
    later = timezone.now() + idempotency.KEPT + timedelta(minutes=1)
    with time_machine.travel(later):
        # A retry a day later is a new request (the client's key is no longer remembered).
        assert tx(api, order, "k1").status_code == 202
        assert OutgoingMessage.objects.count() == 2
        assert idempotency.prune() == 0  # the expired key was replaced by the new one
    assert tx(api, order, "k2").status_code == 202
    with time_machine.travel(later):
        assert idempotency.prune() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["k1"]


def test_the_pruning_runs_from_the_scheduler():
    from tidings.lib.periodic import REGISTRY

    job = REGISTRY["api.idempotency-keys"]
    assert job.task == "tidings.api.tasks.prune_idempotency_keys"
    assert job.every <= timedelta(hours=1)


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_a_400(api, order, key):
    response = tx(api, order, key.encode().decode("unicode_escape"))
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["detail"]
    assert not OutgoingMessage.objects.exists()


def test_a_key_as_a_structured_field_string_is_the_same_key(api, order):
    """The IETF draft sends it quoted (an sf-string), Stripe bare."""
    assert tx(api, order, '"k1"').status_code == 202
    assert tx(api, order, "k1")["Idempotent-Replayed"] == "true"


def test_the_openapi_schema_documents_the_header(api):
    schema = api.client.get("/api/openapi.json").json()
    parameters = schema["paths"]["/api/tx"]["post"]["parameters"]
    header = next(p for p in parameters if p["name"] == "Idempotency-Key")
    assert header["in"] == "header"
    assert header["required"] is False
    assert "24 hours" in header["description"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once: PG")
def test_two_concurrent_retries_send_once(order, monkeypatch):
    """A retry sent while the first request is still being processed: exactly one message, the
    other request a 409 (or the first answer, had it finished)."""
    from tidings.campaigns import transactional

    token = token_for("owner")
    slow = transactional.enqueue_transactional

    def slowly(*args, **kwargs):
        time.sleep(0.5)
        return slow(*args, **kwargs)

    monkeypatch.setattr(transactional, "enqueue_transactional", slowly)
    start = threading.Barrier(2)
    statuses: list[int] = []

    def call() -> None:
        try:
            start.wait()
            response = tx(Api(token), order, "order-A-1")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [202, 409]
    assert OutgoingMessage.objects.count() == 1
    assert IdempotencyKey.objects.get().status_code == 202
