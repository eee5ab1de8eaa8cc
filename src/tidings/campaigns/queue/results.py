"""Recording what happened to claimed rows: a few grouped, conditional UPDATEs per batch."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import F
from django.utils import timezone

from ..config import DeliveryConfig
from ..engagement import note_received
from ..models import Campaign, Delivery, OutgoingMessage
from .claims import Claimed, db_time, one_parameter

QUEUED = Delivery.Status.QUEUED
SENDING = Delivery.Status.SENDING
SENT = Delivery.Status.SENT
FAILED = Delivery.Status.FAILED
SKIPPED = Delivery.Status.SKIPPED


def retry_delay(attempts: int, *, config: DeliveryConfig | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: exponential, ±50% jitter."""
    base = (config or DeliveryConfig.from_settings()).retry_base_seconds
    delay = min(3600.0, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto


@dataclass(slots=True)
class Result:
    """What happened to one claimed row.  ``outcome``: sent | retry | failed | skipped |
    released.  ``error``: a short text without personal data.  ``kind``: the transport error's
    kind ("user_unknown" for a mailbox that does not exist: a hard bounce)."""

    row: Claimed
    outcome: str
    transport: str = ""
    provider_id: str = ""
    error: str = ""
    code: int | None = None
    kind: str = ""
    delay: float | None = None  # released: when it may be claimed again (seconds)
    tracked: bool = False  # sent: with the open pixel and tracked links
    at_recipient: bool = False  # the reply refused the recipient (its domain's: deferrals)

    @property
    def hard_bounce(self) -> bool:
        return self.outcome == "failed" and self.kind == "user_unknown"


_BLANKED = {"subject": "", "text": "", "html": "", "headers": {}, "attachments": []}


def record_results(
    worker_id: str, results: list[Result], *, config: DeliveryConfig | None = None
) -> int:
    """Write results (call it in a transaction: a few grouped UPDATEs); returns how many rows
    changed.

    Every UPDATE is conditional on the row still being this worker's (``leased_by``), so a row
    another worker recovered meanwhile is left alone; fewer changes than results means this
    worker lost rows it had sent (logged by the caller).  Hard bounces are the caller's to pass
    on (``Result.hard_bounce``): the queue does not suppress anyone.
    """
    config = config or DeliveryConfig.from_settings()
    now = timezone.now()
    changed = 0
    groups: dict[tuple[Any, ...], list[int]] = {}
    for result in results:
        row = result.row
        if result.outcome == "sent":
            key: tuple[Any, ...] = (
                row.kind,
                "sent",
                result.transport,
                result.provider_id or None,
                result.tracked,
            )
            if result.provider_id:
                key = (*key, row.id)
        elif result.outcome == "retry":
            attempts = row.attempts + 1
            if attempts >= config.max_attempts:
                key = (row.kind, "failed", result.error, result.code, result.transport)
            else:
                key = (row.kind, "retry", result.error, result.code, attempts, result.transport)
        elif result.outcome == "failed":
            key = (row.kind, "failed", result.error, result.code, result.transport)
        elif result.outcome == "skipped":
            key = (row.kind, "skipped", result.error)
        else:
            key = (row.kind, "released", result.delay, result.error)
        groups.setdefault(key, []).append(row.id)

    received: list[int] = []  # the people whose deliveries were just marked sent
    for key, ids in groups.items():
        kind, outcome = key[0], key[1]
        if outcome == "sent" and kind == "d":
            people = _mark_sent(
                ids, worker_id, now, transport=key[2], message_id=key[3], tracked=key[4]
            )
            changed += len(people)
            received += [pk for pk in people if pk is not None]
            continue
        model = Delivery if kind == "d" else OutgoingMessage
        mine = model.objects.filter(pk__in=one_parameter(ids), leased_by=worker_id, status=SENDING)
        release: dict[str, Any] = {"leased_by": "", "leased_until": None}
        if outcome == "sent":
            values = {
                "status": SENT,
                "sent_at": now,
                "attempts": F("attempts") + 1,
                "error": "",
                "error_code": None,
                "transport": key[2],
                **release,
            }
            if key[3]:
                values["message_id"] = key[3]
            if kind == "o":
                values.update(_BLANKED)
        elif outcome == "retry":
            values = {
                "status": QUEUED,
                "attempts": F("attempts") + 1,
                "next_attempt_at": now + retry_delay(key[4], config=config),
                "error": key[2],
                "error_code": key[3],
                "transport": key[5],
                **release,
            }
        elif outcome == "failed":
            values = {
                "status": FAILED,
                "attempts": F("attempts") + 1,
                "error": key[2],
                "error_code": key[3],
                "transport": key[4],
                **release,
            }
            if kind == "o":
                values.update(_BLANKED)
        elif outcome == "skipped":
            values = {"status": SKIPPED, "error": key[2], **release}
            if kind == "o":
                values.update(_BLANKED)
        else:
            delay, error = key[2], key[3]
            values = {"status": QUEUED, **release}
            if delay:
                values["next_attempt_at"] = now + timedelta(seconds=delay)
            if error:  # why it is still waiting (an unreachable server), for the operator
                values["error"] = error
        changed += mine.update(**values)
        if outcome == "released" and kind == "d":
            # Rows handed back because their campaign stopped: if it was cancelled, they go
            # where do_cancel put its queued rows.
            Delivery.objects.filter(
                pk__in=one_parameter(ids),
                status=QUEUED,
                campaign__status=Campaign.Status.CANCELLED,
            ).update(status=SKIPPED, error="campaign cancelled")
    note_received(received, now)  # the people's last_received_at (segments' received_in)
    return changed


def _mark_sent(
    ids: list[int],
    worker_id: str,
    now: Any,
    *,
    transport: str,
    message_id: str | None,
    tracked: bool,
) -> list[int | None]:
    """Mark this worker's deliveries ``ids`` sent; returns the contact of each row changed.

    The one UPDATE of results written by hand: its RETURNING gives the people whose rows it
    changed, which the ORM's ``update()`` cannot, and which ``last_received_at`` needs (a row
    another worker took back is not this worker's to count).  Otherwise a SELECT of the same
    rows would follow every flush.  The same values as the other groups' ``update()``."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    assignments = (
        "status = %s, sent_at = %s, attempts = attempts + 1, error = '', error_code = NULL, "
        "transport = %s, leased_by = '', leased_until = NULL, tracked = %s"
    )
    params: list[Any] = [SENT, db_time(now), transport, tracked]
    if message_id:
        assignments += ", message_id = %s"
        params.append(message_id)
    id_list = one_parameter(ids)  # the ids as one parameter, as the other groups' UPDATEs
    sql = (
        f"UPDATE {table} SET {assignments} "  # noqa: S608 - our table and columns; values are parameters
        f"WHERE id IN ({id_list.sql}) AND leased_by = %s AND status = %s RETURNING contact_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *id_list.params, worker_id, SENDING])
        return [row[0] for row in cursor.fetchall()]
