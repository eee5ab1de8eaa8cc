"""Starting a campaign's queue: one ``Delivery`` row per recipient, inserted by the database."""

# SQL built here names our own tables; every value is a parameter.
# ruff: noqa: S608

from __future__ import annotations

from django.db import connection
from django.db.models import Max, Min, QuerySet

from ..models import Campaign, Delivery

POPULATE_BATCH = 50_000


def populate_deliveries(
    campaign: Campaign, contacts: QuerySet, *, batch: int = POPULATE_BATCH
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
