"""Claiming rows: one statement moves a small batch from ``queued`` to ``sending`` for a worker."""

# SQL built here names our own tables and conditions; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from ..config import DeliveryConfig
from ..models import Campaign, Delivery, OutgoingMessage


@dataclass(slots=True)
class Claimed:
    """A row a worker holds: ``kind`` "d" (Delivery) or "o" (OutgoingMessage)."""

    kind: str
    id: int
    contact_id: int | None
    attempts: int
    campaign_id: int | None = None
    variant_id: int | None = None  # the A/B variant fixed on the row when the queue was made
    domain: str = ""  # the recipient's domain, once the engine has loaded the contact


def db_time(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def one_parameter(values: Iterable[Any], sql_type: str = "bigint") -> RawSQL:
    """``values`` for a ``field__in=`` lookup as ONE query parameter (an array; JSON on SQLite)
    rather than one placeholder each: a batch's ids, adapted and spliced into the statement one
    by one, cost the sending process more than the statement (psycopg's client-side binding,
    Django's per-value preparation).  ``sql_type`` is ours, never input."""
    values = list(values)
    if connection.vendor == "postgresql":
        return RawSQL(f"SELECT unnest(%s::{sql_type}[])", [values])  # noqa: S611 - constant SQL
    return RawSQL("SELECT value FROM json_each(%s)", [json.dumps(values)])


def _claim_sql(table: str, where: str, order: str, extra: str = "") -> str:
    # Table names, conditions and columns are ours, never input; values travel as parameters.
    if connection.vendor == "postgresql":
        returning = "q.id, q.contact_id, q.attempts" + (f", q.{extra}" if extra else "")
        return (
            f"WITH picked AS MATERIALIZED (SELECT id FROM {table} WHERE {where} "
            f"ORDER BY {order} LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"UPDATE {table} AS q SET status = 'sending', leased_by = %s, leased_until = %s "
            f"FROM picked WHERE q.id = picked.id RETURNING {returning}"
        )
    returning = "id, contact_id, attempts" + (f", {extra}" if extra else "")
    return (
        f"UPDATE {table} SET status = 'sending', leased_by = %s, leased_until = %s "
        f"WHERE status = 'queued' AND id IN (SELECT id FROM {table} WHERE {where} "
        f"ORDER BY {order} LIMIT %s) RETURNING {returning}"
    )


def _claim(
    table: str,
    where: str,
    where_params: list[Any],
    order: str,
    worker_id: str,
    limit: int,
    config: DeliveryConfig | None,
    extra: str = "",
) -> list[tuple[Any, ...]]:
    lease = (config or DeliveryConfig.from_settings()).lease_seconds
    now = timezone.now()
    until = db_time(now + timedelta(seconds=lease))
    sql = _claim_sql(table, where, order, extra)
    if connection.vendor == "postgresql":
        params = [*where_params, db_time(now), limit, worker_id, until]
    else:
        params = [worker_id, until, *where_params, db_time(now), limit]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    rows.sort()
    return rows


def claim_deliveries(
    worker_id: str,
    campaign_id: int,
    limit: int,
    *,
    after: int = 0,
    config: DeliveryConfig | None = None,
) -> list[Claimed]:
    """Claim up to ``limit`` ready rows of one campaign with ids above ``after`` (whatever the
    campaign's status: callers pass campaigns that are sending).

    ``after`` is the caller's cursor: the last id it claimed.  Measured on PostgreSQL with a
    200,000-row campaign half sent: 0.4 ms a claim with the cursor; without it, 40 ms when the
    table's statistics still say every row is queued (autovacuum analyses only every 10% of
    changes), because the planner then walks the primary key through the sent rows.
    """
    where = (
        "campaign_id = %s AND status = 'queued' AND id > %s "
        "AND (next_attempt_at IS NULL OR next_attempt_at <= %s)"
    )
    rows = _claim(
        Delivery._meta.db_table,
        where,
        [campaign_id, after],
        "id",
        worker_id,
        limit,
        config,
        extra="variant_id",
    )
    return [
        Claimed("d", pk, contact, attempts, campaign_id, variant)
        for pk, contact, attempts, variant in rows
    ]


def claim_outgoing(
    worker_id: str, limit: int, *, config: DeliveryConfig | None = None
) -> list[Claimed]:
    """Claim up to ``limit`` ready one-off messages, most urgent first."""
    where = "status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= %s)"
    table = OutgoingMessage._meta.db_table
    rows = _claim(table, where, [], "priority DESC, id", worker_id, limit, config)
    return [Claimed("o", pk, contact, attempts) for pk, contact, attempts in rows]


def sending_campaign_ids() -> list[int]:
    return list(
        Campaign.objects.filter(status=Campaign.Status.SENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def claim_batch(
    worker_id: str, limit: int, *, config: DeliveryConfig | None = None
) -> list[Claimed]:
    """Claim up to ``limit`` rows: one-off messages first, then campaigns that are sending (in
    turn).  Rows of paused, cancelled or finished campaigns are never claimed."""
    claimed = claim_outgoing(worker_id, limit, config=config)
    for campaign_id in sending_campaign_ids():
        if len(claimed) >= limit:
            break
        claimed += claim_deliveries(worker_id, campaign_id, limit - len(claimed), config=config)
    return claimed
