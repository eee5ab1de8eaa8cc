"""ESP webhooks (django-anymail): signed or authenticated posts from Amazon SES, SendGrid,
Postmark, Mailgun and Brevo become bounces and complaints; unsigned, forged or unconfigured ones
are refused and change nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.urls import reverse

from tests.campaigns.bounce_helpers import DOMAIN, delivered
from tidings.audience.emails import email_hmac
from tidings.audience.models import Subscription, Suppression
from tidings.campaigns.messages import message_id_for
from tidings.campaigns.models import Delivery, InboundReport

pytestmark = pytest.mark.django_db

SECRET = "tidings:s3cret-webhook-password"
SIGNING_KEY = "key-mailgun-signing-0123456789"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}


def basic_auth(credentials: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def url(esp: str) -> str:
    return reverse("anymail:" + f"{esp}_tracking_webhook")


def post_json(client, esp: str, payload, **extra):
    return client.post(url(esp), json.dumps(payload), content_type="application/json", **extra)


def suppression_of(contact) -> str | None:
    entry = Suppression.objects.filter(email_hmac=email_hmac(contact.email)).first()
    return entry.reason if entry else None


@pytest.fixture
def ada_delivery():
    _, [(ada, delivery)] = delivered()
    Delivery.objects.filter(pk=delivery.pk).update(message_id="esp-0001-abc")
    delivery.refresh_from_db()
    return ada, delivery


# --- Postmark: basic auth -----------------------------------------------------------------------
def postmark_bounce(ada, kind="HardBounce"):
    return {
        "RecordType": "Bounce",
        "ID": 4323372036854775807,
        "Type": kind,
        "TypeCode": 1 if kind == "HardBounce" else 4096,
        "MessageID": "esp-0001-abc",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": ada.email,
        "BouncedAt": "2026-11-24T16:09:19Z",
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Our November news",
    }


def test_a_postmark_hard_bounce_with_the_secret_suppresses_the_address(client, ada_delivery):
    ada, delivery = ada_delivery
    response = post_json(client, "postmark", postmark_bounce(ada), **basic_auth())
    assert response.status_code == 200
    report = InboundReport.objects.get()
    assert (report.source, report.kind, report.status) == (
        "webhook:postmark",
        "bounce_hard",
        "processed",
    )
    assert report.delivery == delivery and report.provider_id == "esp-0001-abc"
    assert suppression_of(ada) == "hard_bounce"
    assert set(Subscription.objects.filter(contact=ada).values_list("status", flat=True)) == {
        "bounced"
    }


def test_a_postmark_soft_bounce_is_soft(client, ada_delivery):
    ada, _ = ada_delivery
    post_json(client, "postmark", postmark_bounce(ada, "SoftBounce"), **basic_auth())
    assert InboundReport.objects.get().kind == "bounce_soft"
    assert suppression_of(ada) is None


@pytest.mark.parametrize(
    "auth",
    [{}, basic_auth("tidings:wrong-password"), {"HTTP_AUTHORIZATION": "Bearer " + SECRET}],
    ids=["unsigned", "wrong password", "not basic auth"],
)
@pytest.mark.parametrize("esp", ["postmark", "sendgrid", "brevo", "amazon_ses"])
def test_posts_without_the_secret_are_refused_and_change_nothing(client, ada_delivery, esp, auth):
    ada, _ = ada_delivery
    payload = postmark_bounce(ada)
    response = post_json(client, esp, payload, **auth)
    # anymail refuses it (400; SES first asks for credentials with 401, as SNS expects).
    assert response.status_code in (400, 401)
    assert not InboundReport.objects.exists() and suppression_of(ada) is None


def test_the_same_event_posted_twice_counts_once(client, ada_delivery, settings):
    settings.TIDINGS_SOFT_BOUNCE_LIMIT = 2
    ada, _ = ada_delivery
    for _ in range(2):
        post_json(client, "postmark", postmark_bounce(ada, "SoftBounce"), **basic_auth())
    assert InboundReport.objects.count() == 1 and suppression_of(ada) is None


def test_webhooks_answer_404_until_their_secret_is_configured(client, settings, ada_delivery):
    ada, _ = ada_delivery
    settings.ANYMAIL = {}
    for esp in ("postmark", "sendgrid", "brevo", "amazon_ses", "mailgun"):
        assert post_json(client, esp, postmark_bounce(ada), **basic_auth()).status_code == 404
    assert not InboundReport.objects.exists()


# --- SendGrid: basic auth; matched by our Message-ID (smtp-id) -----------------------------------
def test_a_sendgrid_spam_report_is_a_complaint(client):
    _, [(ada, delivery)] = delivered()
    events = [
        {
            "email": ada.email,
            "timestamp": 1795363200,
            "smtp-id": message_id_for("d", delivery.pk, DOMAIN),
            "event": "spamreport",
            "sg_event_id": "c3BhbXJlcG9ydC0xMjM0",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        }
    ]
    response = post_json(client, "sendgrid", events, **basic_auth())
    assert response.status_code == 200
    report = InboundReport.objects.get()
    assert (report.kind, report.status, report.delivery) == ("complaint", "processed", delivery)
    assert suppression_of(ada) == "complaint"


# --- Mailgun: HMAC signature ---------------------------------------------------------------------
def mailgun_payload(ada, delivery, *, key=SIGNING_KEY, severity="permanent"):
    timestamp, token = str(int(time.time())), "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": "failed",
            "severity": severity,
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": 1795363200.1,
            "recipient": ada.email,
            "reason": "bounce",
            "delivery-status": {
                "code": 550 if severity == "permanent" else 452,
                "message": "5.1.1 The email account that you tried to reach does not exist",
            },
            "message": {
                "headers": {
                    "message-id": message_id_for("d", delivery.pk, DOMAIN).strip("<>"),
                    "to": ada.email,
                    "subject": "Our November news",
                }
            },
        },
    }


def test_a_signed_mailgun_failure_is_a_hard_bounce(client):
    _, [(ada, delivery)] = delivered()
    # With the shared secret set, Mailgun's URL carries it too; the signature is checked anyway.
    response = post_json(client, "mailgun", mailgun_payload(ada, delivery), **basic_auth())
    assert response.status_code == 200
    report = InboundReport.objects.get()
    assert (report.kind, report.delivery, report.status) == ("bounce_hard", delivery, "processed")
    assert suppression_of(ada) == "hard_bounce"


def test_mailgun_needs_only_its_signature_when_no_shared_secret_is_set(client, settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    _, [(ada, delivery)] = delivered()
    assert post_json(client, "mailgun", mailgun_payload(ada, delivery)).status_code == 200
    forged = mailgun_payload(ada, delivery, key="key-guessed")
    assert post_json(client, "mailgun", forged).status_code == 400
    assert InboundReport.objects.count() == 1


def test_a_mailgun_post_signed_with_another_key_is_refused(client):
    _, [(ada, delivery)] = delivered()
    forged = mailgun_payload(ada, delivery, key="key-guessed")
    assert post_json(client, "mailgun", forged, **basic_auth()).status_code == 400
    tampered = mailgun_payload(ada, delivery)
    tampered["signature"]["timestamp"] = str(int(tampered["signature"]["timestamp"]) + 1)
    assert post_json(client, "mailgun", tampered, **basic_auth()).status_code == 400
    assert not InboundReport.objects.exists() and suppression_of(ada) is None


# --- Amazon SES: an SNS notification with basic auth ---------------------------------------------
def ses_post(client, ses_event, **extra):
    notification = {
        "Type": "Notification",
        "MessageId": "0f3c5b8e-6a3e-5f2d-9a1b-4c6d8e0f2a3b",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-bounces",
        "Message": json.dumps(ses_event),
        "Timestamp": "2026-11-24T16:09:19.123Z",
        "SignatureVersion": "1",
    }
    return post_json(
        client,
        "amazon_ses",
        notification,
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
        HTTP_X_AMZ_SNS_MESSAGE_ID=notification["MessageId"],
        **extra,
    )


def ses_bounce(ada, delivery, bounce_type="Permanent"):
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": ada.email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2026-11-24T16:09:18.000Z",
            "feedbackId": "0102017a-aaaa",
        },
        "mail": {
            "timestamp": "2026-11-24T16:09:17.000Z",
            "messageId": "0102017a-ses-message-id-000000",
            "source": "bounces@example.co.uk",
            "destination": [ada.email],
            "commonHeaders": {"messageId": message_id_for("d", delivery.pk, DOMAIN)},
        },
    }


def test_an_ses_permanent_bounce_is_hard_and_a_transient_one_soft(client):
    _, [(ada, delivery), (bob, other)] = delivered(2)
    assert ses_post(client, ses_bounce(bob, other, "Transient"), **basic_auth()).status_code == 200
    assert ses_post(client, ses_bounce(ada, delivery), **basic_auth()).status_code == 200
    kinds = dict(InboundReport.objects.values_list("delivery_id", "kind"))
    assert kinds == {other.pk: "bounce_soft", delivery.pk: "bounce_hard"}
    assert suppression_of(ada) == "hard_bounce" and suppression_of(bob) is None


def test_an_ses_permanent_mailbox_full_is_soft_and_a_policy_block_no_bounce_at_all(client):
    """SES calls them Permanent; 5.2.2 (a full mailbox) says nothing against the address: a
    soft bounce, counted towards the limit.  5.7.1 (a spam filter's block) refused the message,
    not the address: no bounce at all, the message failed with its code, nobody suppressed."""
    _, [(ada, delivery), (bob, other)] = delivered(2)
    full = ses_bounce(ada, delivery)
    recipient = full["bounce"]["bouncedRecipients"][0]
    recipient["status"] = "5.2.2"
    recipient["diagnosticCode"] = "smtp; 552 5.2.2 The recipient's inbox is out of storage space"
    blocked = ses_bounce(bob, other)
    recipient = blocked["bounce"]["bouncedRecipients"][0]
    recipient["status"] = "5.7.1"
    recipient["diagnosticCode"] = "smtp; 550 5.7.1 Message likely unsolicited mail"
    assert ses_post(client, full, **basic_auth()).status_code == 200
    assert ses_post(client, blocked, **basic_auth()).status_code == 200
    kinds = dict(InboundReport.objects.values_list("delivery_id", "kind"))
    assert kinds == {delivery.pk: "bounce_soft", other.pk: "blocked"}
    assert InboundReport.objects.get(kind="blocked").detail == "5.7.1"
    other.refresh_from_db()
    assert (other.status, other.error[:14]) == ("failed", "blocked: 5.7.1")
    assert suppression_of(ada) is None and suppression_of(bob) is None


@pytest.mark.parametrize(
    ("status", "diagnostic"),
    [
        (
            "5.1.8",
            "smtp; 553 5.1.8 <bounces@example.co.uk>: Sender address rejected: Domain not found",
        ),
        ("5.1.7", "smtp; 553 5.1.7 The sender address is not a valid RFC-5321 address"),
        # Exim's sender verification gives no enhanced code (SES writes 5.0.0).
        (
            "5.0.0",
            "smtp; 550-Verification failed for <bounces@example.co.uk> 550 Sender verify failed",
        ),
    ],
)
def test_an_esp_bounce_refusing_our_sender_suppresses_nobody(client, status, diagnostic):
    """SES calls a refusal of our envelope sender a Permanent bounce: it suppressed the
    recipient for good, and every recipient of a campaign sent from a misconfigured domain
    with it.  It is ours to fix: the message failed ("sender: ..."), nobody suppressed."""
    _, [(ada, delivery)] = delivered()
    event = ses_bounce(ada, delivery)
    recipient = event["bounce"]["bouncedRecipients"][0]
    recipient["status"], recipient["diagnosticCode"] = status, diagnostic
    assert ses_post(client, event, **basic_auth()).status_code == 200
    report = InboundReport.objects.get()
    assert (report.kind, report.status) == ("sender", "processed")
    assert "nobody suppressed" in report.reason
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error[:7]) == ("failed", "sender:")
    assert suppression_of(ada) is None
    assert set(Subscription.objects.values_list("status", flat=True)) == {"confirmed"}


def test_a_postmark_spam_notification_is_a_filter_not_a_complaint(client, ada_delivery):
    """Postmark's SpamNotification: a receiving spam filter refused or filed the message.
    anymail calls it "complained", which suppressed the person and withdrew their consent."""
    ada, delivery = ada_delivery
    payload = postmark_bounce(ada, "SpamNotification")
    payload["Details"] = "Message rejected by content filter"
    assert post_json(client, "postmark", payload, **basic_auth()).status_code == 200
    report = InboundReport.objects.get()
    assert (report.kind, report.delivery) == ("blocked", delivery)
    assert suppression_of(ada) is None
    assert set(Subscription.objects.values_list("status", flat=True)) == {"confirmed"}


def test_a_code_less_spam_refusal_by_an_esp_is_a_policy_block(client):
    """Brevo passes on the server's reply as it came: "550 Message rejected as spam" gives no
    enhanced code, and was a hard bounce."""
    _, [(ada, delivery)] = delivered()
    payload = {
        "event": "hard_bounce",
        "email": ada.email,
        "id": 1234568,
        "date": "2026-11-24 17:09:19",
        "ts_epoch": 1795363759000,
        "message-id": message_id_for("d", delivery.pk, DOMAIN),
        "reason": "550 Message rejected as spam",
        "tag": "",
    }
    assert post_json(client, "brevo", payload, **basic_auth()).status_code == 200
    assert InboundReport.objects.get().kind == "blocked"
    assert suppression_of(ada) is None


def test_an_ses_post_without_credentials_is_asked_for_them(client):
    _, [(ada, delivery)] = delivered()
    response = ses_post(client, ses_bounce(ada, delivery))
    assert response.status_code == 401 and "WWW-Authenticate" in response
    assert not InboundReport.objects.exists()


# --- Brevo: basic auth ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("event", "kind", "reason"),
    [("hard_bounce", "bounce_hard", "hard_bounce"), ("spam", "complaint", "complaint")],
)
def test_brevo_bounces_and_spam_complaints(client, event, kind, reason):
    _, [(ada, delivery)] = delivered()
    payload = {
        "event": event,
        "email": ada.email,
        "id": 1234567,
        "date": "2026-11-24 17:09:19",
        "ts_epoch": 1795363759000,
        "message-id": message_id_for("d", delivery.pk, DOMAIN),
        "reason": "550 5.1.1 user unknown",
        "tag": "",
    }
    assert post_json(client, "brevo", payload, **basic_auth()).status_code == 200
    assert InboundReport.objects.get().kind == kind
    assert suppression_of(ada) == reason


def test_an_unmatched_esp_event_is_kept_and_matched_on_retry(client, ada_delivery):
    from tidings.campaigns.bounces.processing import do_retry_inbound_report

    ada, delivery = ada_delivery
    # The ESP's event arrives before the worker recorded the provider's id for the message.
    Delivery.objects.filter(pk=delivery.pk).update(message_id="")
    post_json(client, "postmark", postmark_bounce(ada), **basic_auth())
    report = InboundReport.objects.get()
    assert report.status == "unprocessed" and bytes(report.raw)
    Delivery.objects.filter(pk=delivery.pk).update(message_id="esp-0001-abc")
    report = do_retry_inbound_report(report)
    assert report.status == "processed" and suppression_of(ada) == "hard_bounce"
