"""Outgoing webhooks: domain signals become signed HTTP POSTs, sent by the worker.

When an event happens (``tidings.signals``, fired after the change committed) one
``WebhookDelivery`` row is written for each active endpoint that asked for the event, holding
internal ids only, and the ``send_due_webhooks`` task is enqueued.  The worker posts each row
signed per Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,…``,
with the ``standardwebhooks`` library), building the payload at that moment: the ids, plus only
the personal fields the endpoint was granted, read from the contact as it is then (an erased
contact's fields are gone).  A failed attempt is retried with exponential backoff; after
``TIDINGS_WEBHOOK_DISABLE_AFTER`` consecutive failures the endpoint is disabled and the owners are
told by email.  The log keeps status code, duration and a short error, never the payload.

Endpoints may not point inside: the host is resolved at send time, loopback, private, link-local
and other non-public addresses are refused (``TIDINGS_WEBHOOKS_ALLOW_PRIVATE`` lets private and
loopback ones through), and the payload goes to exactly the address that was checked.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from tidings import signals
from tidings.lib import outbound
from tidings.lib.audit import audit

from .models import EVENTS, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

USER_AGENT = "tidings-webhooks/1"


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_attempts() -> int:
    return _setting("TIDINGS_WEBHOOK_MAX_ATTEMPTS", 8)


def retry_base_seconds() -> int:
    return _setting("TIDINGS_WEBHOOK_RETRY_SECONDS", 30)


def disable_after() -> int:
    return _setting("TIDINGS_WEBHOOK_DISABLE_AFTER", 15)


def timeout_seconds() -> int:
    return _setting("TIDINGS_WEBHOOK_TIMEOUT_SECONDS", 10)


def concurrency() -> int:
    """How many receivers a run of the sender posts to at once (one row at a time each)."""
    return max(1, _setting("TIDINGS_WEBHOOK_CONCURRENCY", 8))


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: base × 2^(n-1), max a day."""
    return timedelta(seconds=min(retry_base_seconds() * 2 ** max(attempts - 1, 0), 86400))


# --- recording events ---------------------------------------------------------------------------
def record_event(event: str, data: dict[str, Any]) -> int:
    """Queue ``event`` (ids only in ``data``) for every active endpoint that wants it; enqueue
    the sender once the rows are committed.  Returns how many rows were written."""
    return record_events(event, [data])


def record_events(event: str, datas: Iterable[dict[str, Any]]) -> int:
    """``record_event`` for many of one kind at once (an operator removing thousands from a
    list): one row per event and endpoint, written together, one query for the endpoints."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(is_active=True) if event in (e.events or [])
    ]
    if not endpoints:
        return 0
    now = timezone.now()
    rows = [
        WebhookDelivery(
            endpoint=endpoint,
            msg_id=f"msg_{uuid.uuid4().hex}",
            event=event,
            data=data,
            next_attempt_at=now,
        )
        for data in datas
        for endpoint in endpoints
    ]
    if not rows:
        return 0
    with transaction.atomic():
        WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
        transaction.on_commit(_enqueue_sender)
    return len(rows)


def _enqueue_sender() -> None:
    from .tasks import send_due_webhooks

    try:
        send_due_webhooks.enqueue()
    except Exception:  # the periodic job picks the rows up within a minute anyway
        logger.exception("could not enqueue the webhook sender")


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}


def _receiver(event: str, keys: Iterable[str]):
    keys = tuple(keys)

    def receive(sender: Any, **kwargs: Any) -> None:
        record_event(event, _jsonable({k: kwargs.get(k) for k in keys}))

    receive.__name__ = f"webhook_{event.replace('.', '_')}"
    return receive


def _unsubscribed(sender: Any, *, contact_ids: Iterable[int], list_id: Any, **kwargs: Any) -> None:
    """One ``contact.unsubscribed`` per person, from the batch signal (an operator's removal
    of thousands queues them in one write)."""
    record_events(
        "contact.unsubscribed", [{"contact_id": c, "list_id": list_id} for c in contact_ids]
    )


_RECEIVERS = [
    (signals.contact_subscribed, "contact.subscribed", ("contact_id", "list_id")),
    (signals.delivery_bounced, "delivery.bounced", ("contact_id", "delivery_id", "hard")),
    (signals.delivery_complained, "delivery.complained", ("contact_id", "delivery_id")),
    (signals.campaign_finished, "campaign.finished", ("campaign_id",)),
    (signals.rights_request_received, "rights_request.received", ("request_id", "kind")),
    (
        signals.rights_request_near_due,
        "rights_request.near_due",
        ("request_id", "kind", "due", "due_on"),
    ),
    (signals.journey_entered, "journey.entered", ("journey_id", "enrolment_id")),
    (signals.journey_exited, "journey.exited", ("journey_id", "enrolment_id", "reason")),
    (signals.journey_converted, "journey.converted", ("journey_id", "enrolment_id", "reason")),
    (
        signals.journey_webhook,
        "journey.step",
        ("journey_id", "enrolment_id", "contact_id", "event"),
    ),
]


def connect_signals() -> None:
    """Connect a receiver to each domain signal (idempotent: each has a dispatch_uid)."""
    for signal, event, keys in _RECEIVERS:
        signal.connect(
            _receiver(event, keys), weak=False, dispatch_uid=f"tidings.api.webhooks.{event}"
        )
    signals.contacts_unsubscribed.connect(
        _unsubscribed, weak=False, dispatch_uid="tidings.api.webhooks.contact.unsubscribed"
    )


# --- payloads -----------------------------------------------------------------------------------
def payload_for(delivery: WebhookDelivery) -> dict[str, Any]:
    """The body posted: ``type``, ``timestamp``, ``data`` = the event's ids, plus ``contact``
    with the granted fields when the event is about a contact who still exists."""
    from tidings.audience.operator_forms import contact_fields

    data = dict(delivery.data)
    # Granted, and still held under the policy: a field it stopped collecting after the grant
    # is no longer sent.
    held = set(contact_fields())
    granted = [f for f in delivery.endpoint.fields or [] if f in held]
    contact_id = data.get("contact_id")
    if granted and contact_id:
        from tidings.audience.models import Contact

        values = Contact.objects.filter(pk=contact_id).values(*granted).first()
        if values is not None:
            data["contact"] = values
    return {
        "type": delivery.event,
        "timestamp": delivery.created_at.astimezone(UTC).isoformat(),
        "data": data,
    }


def allow_private() -> bool:
    """TIDINGS_WEBHOOKS_ALLOW_PRIVATE: may endpoints be on private and loopback addresses?"""
    return bool(getattr(settings, "TIDINGS_WEBHOOKS_ALLOW_PRIVATE", False))


def signed_body(delivery: WebhookDelivery, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The JSON body and the Standard Webhooks headers for one attempt."""
    body = json.dumps(payload_for(delivery), separators=(",", ":"), default=str)
    signature = Webhook(delivery.endpoint.secret).sign(delivery.msg_id, now.astimezone(UTC), body)
    return body.encode("utf-8"), {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def _attempt(url: str, body: bytes, headers: dict[str, str]) -> outbound.Response | str:
    """Post once: the answer, or why there was none.  Network only (no database): it runs in
    the sender's threads."""
    try:
        target = outbound.resolve(url, allow_private=allow_private())
    except outbound.TargetRefused as exc:
        return f"refused: {exc}"
    except ValueError as exc:  # not an http(s) URL (only rows older than the check hold one)
        return f"refused: the address {exc}"
    except OSError as exc:  # the name does not resolve
        return f"{type(exc).__name__}: {exc}"
    try:
        return outbound.post(target, body, headers, timeout=timeout_seconds())
    except http.client.RemoteDisconnected as exc:  # a BadStatusLine too, but its text is ours
        return f"{type(exc).__name__}: {exc}"
    except http.client.BadStatusLine:  # its text is the receiver's first line, whatever it was
        return "the receiver did not answer in HTTP (no status line)"
    except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
        return _one_line(f"{type(exc).__name__}: {exc}")


def _one_line(text: str) -> str:
    """An error as one printable line: it goes into the log and the endpoint's page."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def post(delivery: WebhookDelivery) -> tuple[int | None, int, str]:
    """Send one attempt: (status code or None, duration in ms, short error or "").

    The endpoint's host is resolved now and every address checked (``tidings.lib.outbound``);
    the payload goes to exactly a checked address, and a redirect is recorded, not followed.
    """
    body, headers = signed_body(delivery, timezone.now())
    return _exchange(delivery.endpoint.url, body, headers)


def _exchange(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, int, str]:
    """``post`` once the body is signed: the network part alone."""
    started = time.monotonic()
    outcome = _attempt(url, body, headers)
    duration = int((time.monotonic() - started) * 1000)
    if isinstance(outcome, str):
        return None, duration, outcome[:200]
    status = outcome.status
    if 300 <= status < 400:
        return status, duration, f"HTTP {status} (redirects are not followed)"
    return status, duration, "" if 200 <= status < 300 else f"HTTP {status}"


# --- the sender ---------------------------------------------------------------------------------
#: How long one run of the sender may go on starting attempts; what is left stays due for the
#: next run (every 30 seconds), so other background work gets its turn in between.
RUN_SECONDS = 60


def lease() -> timedelta:
    """How long a claimed row is left alone: the whole attempt (``timeout_seconds``: one deadline
    for the exchange) with room for the name lookup before it."""
    return timedelta(seconds=timeout_seconds() * 2 + 30)


def _claim(delivery_id: int, now: datetime) -> bool:
    """Take one due row; its lease runs from ``now``, the moment of the claim (not the start of
    the run: a run longer than the lease handed out rows already free for another worker)."""
    return (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        ).update(status=WebhookDelivery.Status.SENDING, leased_until=now + lease())
        == 1
    )


def _reclaim_stale(now: datetime) -> None:
    """Rows a worker died while sending go back to the queue."""
    WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, leased_until__lt=now
    ).update(status=WebhookDelivery.Status.PENDING, leased_until=None)


def _resting(now: datetime):
    """Endpoints whose last attempt got no answer at all (a timeout, a refused connection)
    and whose retry is not due yet: their newer events wait for that retry, so a dead or slow
    receiver costs the worker one timeout per retry instead of one per event."""
    return WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING,
        attempts__gt=0,
        last_status_code__isnull=True,
        next_attempt_at__gt=now,
    ).values("endpoint_id")


def send_due(
    limit: int = 200, now: datetime | None = None, max_seconds: float | None = None
) -> dict[str, int]:
    """Send due deliveries (at most ``limit``, starting none after ``max_seconds``); returns
    counts by outcome, and how many due ones were left ``waiting`` for a later run: those of an
    endpoint that did not answer in this run or is resting (``_resting``), and those past the
    time limit."""
    now = now or timezone.now()
    started = time.monotonic()
    _reclaim_stale(now)
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=now,
            endpoint__is_active=True,
        )
        .exclude(endpoint_id__in=_resting(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "endpoint_id")[:limit]
    )
    counts = {"succeeded": 0, "retrying": 0, "failed": 0, "waiting": 0}
    # One lane per endpoint, in the order its rows are due.  A slow receiver (answering just
    # within the timeout, row after row) held up every other receiver's events behind its own
    # when one loop posted them all in turn; now up to ``concurrency()`` receivers are posted
    # to at once, each still one row at a time and in order.  Only the network exchange runs
    # in the threads: claiming, building the payload and recording the outcome stay here.
    lanes: dict[int, deque[int]] = {}
    for delivery_id, endpoint_id in due:
        lanes.setdefault(endpoint_id, deque()).append(delivery_id)
    in_flight: dict[Future, WebhookDelivery] = {}
    pool = (
        ThreadPoolExecutor(max_workers=concurrency(), thread_name_prefix="webhook")
        if concurrency() > 1
        else _InPlace()
    )
    with pool:
        while True:
            out_of_time = max_seconds is not None and time.monotonic() - started >= max_seconds
            busy = {d.endpoint_id for d in in_flight.values()}
            for endpoint_id, lane in lanes.items():
                if out_of_time or len(in_flight) >= concurrency():
                    break
                if endpoint_id in busy:
                    continue
                delivery = _next_claimed(lane, now + timedelta(seconds=time.monotonic() - started))
                if delivery is not None:
                    body, headers = signed_body(delivery, timezone.now())
                    in_flight[pool.submit(_exchange, delivery.endpoint.url, body, headers)] = (
                        delivery
                    )
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                delivery = in_flight.pop(future)
                outcome, answered = _record(delivery, *future.result())
                counts[outcome] += 1
                if not answered:  # the rest of its rows wait for this one's retry
                    counts["waiting"] += len(lanes[delivery.endpoint_id])
                    lanes[delivery.endpoint_id].clear()
    counts["waiting"] += sum(len(lane) for lane in lanes.values())  # past the time limit
    return counts


class _InPlace(Executor):
    """One receiver at a time (``TIDINGS_WEBHOOK_CONCURRENCY=1``): each exchange runs in the
    sender's own thread, as before there were lanes."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _next_claimed(lane: deque[int], now: datetime) -> WebhookDelivery | None:
    """The lane's next row this worker could claim (another worker may have taken some)."""
    while lane:
        delivery_id = lane.popleft()
        if _claim(delivery_id, now):
            return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    return None


def send_one(delivery: WebhookDelivery) -> str:
    """Post a claimed delivery and record the outcome: succeeded, retrying or failed."""
    return _send_one(delivery)[0]


def _send_one(delivery: WebhookDelivery) -> tuple[str, bool]:
    """``send_one``, and whether the receiver answered at all."""
    return _record(delivery, *post(delivery))


def _record(
    delivery: WebhookDelivery, status: int | None, duration: int, error: str
) -> tuple[str, bool]:
    """Record an attempt's outcome; returns it, and whether the receiver answered at all."""
    answered = status is not None
    attempts = delivery.attempts + 1
    ok = status is not None and 200 <= status < 300
    fields: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": status,
        "last_duration_ms": duration,
        "last_error": error[:200],
        "leased_until": None,
    }
    endpoint = delivery.endpoint
    if ok:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.SUCCEEDED, delivered_at=timezone.now(), **fields
        )
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        return "succeeded", answered
    final = attempts >= max_attempts()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDelivery.Status.FAILED if final else WebhookDelivery.Status.PENDING,
        next_attempt_at=timezone.now() + backoff(attempts),
        **fields,
    )
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    endpoint.refresh_from_db(fields=["consecutive_failures", "is_active"])
    logger.info(
        "webhook delivery %s to endpoint %s failed (attempt %s): %s",
        delivery.pk,
        endpoint.pk,
        attempts,
        error or status,
    )
    if endpoint.is_active and endpoint.consecutive_failures >= disable_after():
        do_disable_failing_endpoint(endpoint)
    return ("failed" if final else "retrying"), answered


@transaction.atomic
def do_disable_failing_endpoint(endpoint: WebhookEndpoint) -> bool:
    """Switch off an endpoint that keeps failing and tell the owners (system email)."""
    reason = f"disabled after {endpoint.consecutive_failures} consecutive failed deliveries"
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_reason=reason
    )
    if not changed:
        return False
    audit("webhook.auto_disabled", actor_label="worker", obj=endpoint, reason=reason)
    pk = endpoint.pk
    transaction.on_commit(lambda: _notify_owners(pk, reason))
    return True


def owner_addresses(endpoint: WebhookEndpoint) -> list[str]:
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    users = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name="owner") | Q(pk=endpoint.created_by_id or 0))
    )
    return sorted({u.email for u in users.distinct() if u.email})


def _notify_owners(endpoint_id: int, reason: str) -> None:
    from django.core.mail import send_mail
    from django.urls import reverse

    from tidings.audience.tokens import absolute_url

    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return
    recipients = owner_addresses(endpoint)
    if not recipients:
        return
    link = absolute_url(reverse("api_settings:webhook", args=[endpoint.pk]))
    try:
        send_mail(
            subject=f"tidings: webhook endpoint #{endpoint.pk} was disabled",
            message=(
                f"The webhook endpoint #{endpoint.pk} ({endpoint.url}) was {reason}.\n\n"
                "Events for it are no longer queued. Check the receiving server, then enable "
                f"the endpoint again:\n{link}\n"
            ),
            from_email=settings.SERVER_EMAIL,
            recipient_list=recipients,
        )
    except Exception:  # the endpoint is disabled either way; the page shows why
        logger.exception("could not email the owners about webhook endpoint %s", endpoint_id)
