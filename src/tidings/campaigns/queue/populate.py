"""Starting a campaign's queue: one ``Delivery`` row per recipient, inserted by the database."""

# SQL built here names our own tables; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

import random
from array import array
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Max, Min, Q, QuerySet

from ..models import Campaign, Delivery

POPULATE_BATCH = 50_000


def populate_deliveries(
    campaign: Campaign, contacts: QuerySet[Any], *, batch: int = POPULATE_BATCH
) -> int:
    """Queue one Delivery row per contact of ``contacts`` (a queryset of Contacts or of their
    ids); returns how many rows were inserted.

    The database copies the ids itself (``INSERT … SELECT``), ``batch`` contact ids at a time
    (ranges of the primary key), so a million recipients never pass through Python.  A contact
    who already has a row for this campaign is left alone (the unique constraint), so calling it
    twice, or with overlapping querysets, queues nobody twice.
    """
    ids = contacts.values_list("pk", flat=True).order_by()
    bounds = ids.model.objects.filter(pk__in=ids).aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return 0
    columns = "campaign_id, contact_id, status, attempts, leased_by, message_id, error, transport"
    inserted = 0
    low = bounds["low"]
    while low <= bounds["high"]:
        high = low + batch
        select_sql, params = ids.filter(pk__gte=low, pk__lt=high).query.sql_with_params()
        sql = (
            f"INSERT INTO {Delivery._meta.db_table} ({columns}) "
            f"SELECT %s, picked.*, 'queued', 0, '', '', '', '' FROM ({select_sql}) AS picked "
            # "WHERE true": SQLite's parser needs it before ON CONFLICT after a SELECT.
            "WHERE true ON CONFLICT (campaign_id, contact_id) DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, (campaign.pk, *params))
            inserted += max(cursor.rowcount, 0)
        low = high
    return inserted


# --- A/B tests and held rows ---------------------------------------------------------------------
UPDATE_BATCH = 2_000


def _update_ids(
    ids: list[int], batch: int = UPDATE_BATCH, *, only_status: str | None = None, **values: Any
) -> int:
    """Update rows by id, ``batch`` at a time; with ``only_status``, only rows still in it (a
    conditional update: another worker may have moved them since they were read)."""
    changed = 0
    rows = Delivery.objects.all()
    if only_status is not None:
        rows = rows.filter(status=only_status)
    for start in range(0, len(ids), batch):
        changed += rows.filter(pk__in=ids[start : start + batch]).update(**values)
    return changed


def assign_variants(
    campaign: Campaign, variant_ids: Sequence[int], share: int, seed: int
) -> dict[int | None, int]:
    """Split the campaign's queued rows for an A/B test; returns rows per variant (None: held).

    ``share`` percent of the rows, chosen at random with ``random.Random(seed)`` (the same seed
    and queue always give the same split), are divided evenly between ``variant_ids`` (their
    sizes differ by at most one); the others become ``held``, to get the winner later.  Runs in
    the transaction that populated the queue, so each person's variant is fixed on their row
    before any worker can claim it: a crash and a second claim send the same variant.

    Memory: the ids of the queued rows (8 bytes each in an ``array``; 1M rows: 8 MB).
    """
    queued = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.QUEUED)
    ids = array("q", queued.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=10_000))
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)  # noqa: S311 - a reproducible split, not a secret
    tested = round(len(ids) * min(max(share, 0), 100) / 100)
    groups: dict[int | None, list[int]] = {v: [] for v in variant_ids}
    for position, index in enumerate(order[:tested]):
        groups[variant_ids[position % len(variant_ids)]].append(ids[index])
    for variant_id, members in groups.items():
        members.sort()
        _update_ids(members, variant_id=variant_id)
    # Everyone not in the test: one statement (measured: a batched update by id took 3× the
    # populate step at 200,000 rows; this takes about as long as it).
    rest = queued.filter(variant__isnull=True).update(status=Delivery.Status.HELD)
    counts: dict[int | None, int] = {v: len(m) for v, m in groups.items()}
    counts[None] = rest
    return counts


def release_held(campaign: Campaign | int, *, variant_id: int | None = None) -> int:
    """Give the campaign's held rows that wait for no particular time (an A/B test's rest)
    ``variant_id`` and put them in the queue; returns how many.  Rows held until a local hour
    keep waiting for it (``release_due``), with the variant set."""
    pk = campaign.pk if isinstance(campaign, Campaign) else campaign
    held = Delivery.objects.filter(campaign_id=pk, status=Delivery.Status.HELD)
    if variant_id is not None:
        held.filter(variant__isnull=True).update(variant_id=variant_id)
    return held.filter(next_attempt_at__isnull=True).update(status=Delivery.Status.QUEUED)


def release_due(now: datetime, *, limit: int = 50_000) -> int:
    """Queue held rows whose time has come, of campaigns not waiting for an A/B winner; returns
    how many.  Uses the partial index on held rows' times (``delivery_held``)."""
    due = Delivery.objects.filter(
        status=Delivery.Status.HELD, next_attempt_at__isnull=False, next_attempt_at__lte=now
    ).filter(Q(campaign__ab_test__isnull=True) | Q(variant__isnull=False))
    ids = list(due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
    return _update_ids(
        ids, only_status=Delivery.Status.HELD, status=Delivery.Status.QUEUED, next_attempt_at=None
    )
