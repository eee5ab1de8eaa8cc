"""Outgoing webhooks against a real HTTP server on 127.0.0.1, signatures checked with the
standardwebhooks library."""

from __future__ import annotations

import http.server
import json
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tests.campaigns.lifecycle_helpers import make_list, person
from tidings import signals
from tidings.api.actions import do_create_webhook_endpoint
from tidings.api.models import WebhookDelivery, WebhookEndpoint
from tidings.api.webhooks import send_due
from tidings.audience.actions import do_subscribe, do_unsubscribe

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP server that records what it is sent and answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.received.append((headers, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def local_receivers_allowed(settings):
    """These tests post to a receiver on 127.0.0.1, which only this setting allows
    (tests/api/test_webhook_targets.py: what happens without it)."""
    settings.TIDINGS_WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def owner_user(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("boss", "boss@example.co.uk", "pw")


def endpoint_for(url, events=("contact.subscribed",), fields=(), actor=None):
    return do_create_webhook_endpoint(url=url, events=events, fields=fields, actor=actor)


def test_a_subscription_arrives_signed_with_only_the_granted_fields(
    receiver, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver.url, fields=["email"])
    news = make_list()
    ada = person("Ada Lovelace")
    with django_capture_on_commit_callbacks(execute=True):
        do_subscribe(ada, news, source="api", wording_text="Yes", confirmed=True)
    assert send_due() == {"succeeded": 1, "retrying": 0, "failed": 0, "waiting": 0}

    [(headers, body)] = receiver.received
    payload = Webhook(endpoint.secret).verify(body, headers)  # raises if the signature is wrong
    assert payload["type"] == "contact.subscribed"
    assert payload["data"]["contact_id"] == ada.pk
    assert payload["data"]["list_id"] == news.pk
    assert payload["data"]["contact"] == {"email": ada.email}
    assert "Ada" not in body.decode()
    delivery = WebhookDelivery.objects.get()
    assert headers["webhook-id"] == delivery.msg_id
    assert delivery.status == "succeeded"
    assert delivery.last_status_code == 204
    assert delivery.last_duration_ms is not None


def readme_verifier(secret: str, headers: dict[str, str], body: bytes, now: float) -> dict:
    """A receiver's check written from the README alone ("Checking a delivery without the
    library"), with nothing but the standard library."""
    import base64
    import hashlib
    import hmac

    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now - int(stamp)) > 5 * 60:
        raise ValueError("too old or from the future: a replay?")
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + body
    mine = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for entry in headers["webhook-signature"].split():
        version, _, theirs = entry.partition(",")
        if version == "v1" and hmac.compare_digest(theirs, mine):
            return json.loads(body)
    raise ValueError("no matching signature")


def test_a_receiver_can_check_deliveries_and_retries_by_the_readme_recipe(receiver, settings):
    import time_machine

    receiver.status = 500
    endpoint = endpoint_for(receiver.url, events=["campaign.finished"])
    signals.campaign_finished.send(sender=None, campaign_id=4)
    send_due()
    later = timezone.now() + timedelta(hours=3)
    receiver.status = 204
    with time_machine.travel(later, tick=False):
        assert send_due()["succeeded"] == 1
    (first_headers, first_body), (headers, body) = receiver.received

    # Each attempt verifies against the clock of the moment it was sent...
    first = readme_verifier(endpoint.secret, first_headers, first_body, time.time())
    assert first["data"] == {"campaign_id": 4}
    assert readme_verifier(endpoint.secret, headers, body, later.timestamp()) == first
    assert headers["webhook-id"] == first_headers["webhook-id"]  # the same message
    # ...and a captured one replayed later, a changed body or another secret are refused.
    with pytest.raises(ValueError, match="replay"):
        readme_verifier(endpoint.secret, first_headers, first_body, later.timestamp())
    with pytest.raises(ValueError, match="signature"):
        readme_verifier(endpoint.secret, headers, body.replace(b"4", b"5"), later.timestamp())
    other = endpoint_for(receiver.url, events=["campaign.finished"]).secret
    with pytest.raises(ValueError, match="signature"):
        readme_verifier(other, headers, body, later.timestamp())


def test_a_payload_carries_ids_only_when_no_field_was_granted(
    receiver, django_capture_on_commit_callbacks
):
    endpoint_for(receiver.url, events=["contact.unsubscribed"])
    news = make_list()
    ada = person("Ada Lovelace")
    do_subscribe(ada, news, source="api", wording_text="Yes", confirmed=True)
    with django_capture_on_commit_callbacks(execute=True):
        do_unsubscribe(ada, news, source="api")
    send_due()
    [(_, body)] = receiver.received
    payload = json.loads(body)
    assert payload["type"] == "contact.unsubscribed"
    assert payload["data"] == {"contact_id": ada.pk, "list_id": news.pk}
    assert ada.email not in body.decode()


def test_a_granted_field_the_policy_no_longer_collects_is_not_sent(
    receiver, settings, tmp_path, django_capture_on_commit_callbacks
):
    """The grant was checked against the policy when the endpoint was registered only: after
    the policy stopped collecting a field, every payload still carried it to the receiver."""
    endpoint_for(receiver.url, fields=["email", "work_address"])
    news = make_list()
    ada = person("Ada Lovelace")
    Contact = type(ada)
    Contact.objects.filter(pk=ada.pk).update(work_address="1 Analytical Row")
    example = settings.BASE_DIR / "policy" / "example.toml"
    policy = tmp_path / "policy.toml"
    policy.write_text(
        example.read_text()
        .replace('"job_title", "work_address"]', '"job_title"]')
        .replace('"work_address", "order_reference"', '"order_reference"')
    )
    settings.TIDINGS_POLICY = str(policy)
    with django_capture_on_commit_callbacks(execute=True):
        do_subscribe(ada, news, source="api", wording_text="Yes", confirmed=True)
    send_due()
    [(_, body)] = receiver.received
    assert json.loads(body)["data"]["contact"] == {"email": ada.email}
    assert "Analytical Row" not in body.decode()


def test_an_operator_removing_people_from_a_list_is_announced_for_each_person(
    receiver, django_capture_on_commit_callbacks, django_user_model
):
    """As the person's own unsubscribe is: one contact.unsubscribed each; the consent ledger
    says which operator withdrew them."""
    from tidings.audience.models import ConsentEvent
    from tidings.audience.operator import do_remove_from_list

    endpoint_for(receiver.url, events=["contact.unsubscribed"])
    news = make_list()
    ada, alan = person("Ada Lovelace"), person("Alan Turing")
    for someone in (ada, alan):
        do_subscribe(someone, news, source="api", wording_text="Yes", confirmed=True)
    operator = django_user_model.objects.create(username="operator")
    with django_capture_on_commit_callbacks(execute=True):
        do_remove_from_list([ada.pk, alan.pk], news, actor=operator)
    assert send_due()["succeeded"] == 2
    payloads = sorted((json.loads(body) for _, body in receiver.received), key=str)
    assert [p["type"] for p in payloads] == ["contact.unsubscribed"] * 2
    assert sorted(p["data"]["contact_id"] for p in payloads) == sorted([ada.pk, alan.pk])
    assert {p["data"]["list_id"] for p in payloads} == {news.pk}
    withdrawn = ConsentEvent.objects.filter(action="withdrawn", mailing_list=news)
    assert set(withdrawn.values_list("contact_id", "source", "source_ref")) == {
        (ada.pk, "operator", f"user:{operator.pk}"),
        (alan.pk, "operator", f"user:{operator.pk}"),
    }


def test_only_endpoints_that_asked_for_the_event_get_it(receiver):
    endpoint_for(receiver.url, events=["campaign.finished"])
    other = endpoint_for(receiver.url, events=["delivery.bounced"])
    signals.campaign_finished.send(sender=None, campaign_id=7)
    signals.delivery_bounced.send(sender=None, contact_id=None, delivery_id=3, hard=True)
    send_due()
    kinds = sorted(json.loads(body)["type"] for _, body in receiver.received)
    assert kinds == ["campaign.finished", "delivery.bounced"]
    assert WebhookDelivery.objects.filter(endpoint=other).count() == 1


def test_a_failed_delivery_is_retried_later_with_growing_waits(receiver, settings):
    settings.TIDINGS_WEBHOOK_RETRY_SECONDS = 30
    receiver.status = 500
    endpoint_for(receiver.url, events=["campaign.finished"])
    signals.campaign_finished.send(sender=None, campaign_id=1)
    assert send_due() == {"succeeded": 0, "retrying": 1, "failed": 0, "waiting": 0}
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert delivery.last_status_code == 500
    first_wait = delivery.next_attempt_at - timezone.now()
    assert timedelta(seconds=25) < first_wait <= timedelta(seconds=30)
    assert send_due() == {"succeeded": 0, "retrying": 0, "failed": 0, "waiting": 0}  # not due yet

    later = delivery.next_attempt_at + timedelta(seconds=1)
    receiver.status = 200
    assert send_due(now=later)["succeeded"] == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert delivery.attempts == 2
    assert len(receiver.received) == 2
    # The same message id on every attempt, so receivers can drop duplicates.
    assert receiver.received[0][0]["webhook-id"] == receiver.received[1][0]["webhook-id"]


def test_an_unreachable_endpoint_is_logged_without_a_status(settings):
    endpoint_for("http://127.0.0.1:9/nothing-listens-here", events=["campaign.finished"])
    signals.campaign_finished.send(sender=None, campaign_id=1)
    send_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.last_status_code is None
    assert delivery.last_error


def test_an_endpoint_that_keeps_failing_is_disabled_and_the_owners_told(
    receiver, settings, owner_user, django_capture_on_commit_callbacks
):
    settings.TIDINGS_WEBHOOK_DISABLE_AFTER = 3
    receiver.status = 503
    endpoint = endpoint_for(receiver.url, events=["campaign.finished"], actor=owner_user)
    for n in range(3):
        signals.campaign_finished.send(sender=None, campaign_id=n)
    with django_capture_on_commit_callbacks(execute=True):
        send_due()
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert "3 consecutive failed" in endpoint.disabled_reason
    [notice] = mail.outbox
    assert notice.to == ["boss@example.co.uk"]
    assert f"#{endpoint.pk}" in notice.subject
    # A disabled endpoint gets no new events.
    signals.campaign_finished.send(sender=None, campaign_id=99)
    assert WebhookDelivery.objects.filter(data__campaign_id=99).count() == 0


def test_a_delivery_gives_up_after_the_last_attempt(receiver, settings):
    settings.TIDINGS_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.status = 500
    endpoint_for(receiver.url, events=["campaign.finished"])
    signals.campaign_finished.send(sender=None, campaign_id=1)
    send_due()
    later = timezone.now() + timedelta(days=1)
    assert send_due(now=later) == {"succeeded": 0, "retrying": 0, "failed": 1, "waiting": 0}
    assert WebhookDelivery.objects.get().status == "failed"


def test_an_endpoint_with_an_unknown_event_or_field_is_refused():
    from tidings.api.actions import EndpointInvalid

    with pytest.raises(EndpointInvalid) as caught:
        endpoint_for("https://example.com/h", events=["nope"], fields=["religion"])
    assert len(caught.value.problems) == 2
    assert not WebhookEndpoint.objects.exists()


def test_a_campaign_that_finishes_sending_is_announced(
    receiver, django_capture_on_commit_callbacks
):
    from tests.campaigns.lifecycle_helpers import make_campaign
    from tidings.campaigns.lifecycle import finish_if_done

    endpoint_for(receiver.url, events=["campaign.finished"])
    campaign = make_campaign(make_list(), status="sending")
    with django_capture_on_commit_callbacks(execute=True):
        assert finish_if_done(campaign) is True
    send_due()
    [(_, body)] = receiver.received
    assert json.loads(body)["data"] == {"campaign_id": campaign.pk}


def test_a_rights_request_made_through_the_api_is_announced(
    receiver, django_capture_on_commit_callbacks
):
    from .helpers import Api, token_for

    endpoint_for(receiver.url, events=["rights_request.received"])
    api = Api(token_for("owner"))
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/rights-requests", {"kind": "access", "email": "x@example.com"})
    send_due()
    [(_, body)] = receiver.received
    assert json.loads(body)["data"] == {"request_id": created.json()["id"], "kind": "access"}
    assert "x@example.com" not in body.decode()


def test_a_rights_request_near_its_due_date_is_announced_with_due(
    receiver, django_capture_on_commit_callbacks
):
    """The documented field is ``due`` (as in the REST answer); ``due_on`` stays for receivers
    written against it, with the same date."""
    from tidings.rights.actions import do_create_rights_request, do_remind_near_due

    endpoint_for(receiver.url, events=["rights_request.near_due"])
    request = do_create_rights_request("access", "x@example.com", channel="api", actor=None)
    with django_capture_on_commit_callbacks(execute=True):
        assert do_remind_near_due(today=request.due) == [request.pk]
    send_due()
    [(_, body)] = receiver.received
    data = json.loads(body)["data"]
    assert data["due"] == data["due_on"] == request.due.isoformat()
