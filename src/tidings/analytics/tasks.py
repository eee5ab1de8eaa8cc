"""Background work of the analytics app, run by ``tidings worker`` (django.tasks)."""

from __future__ import annotations

from typing import Any

from django.tasks import task


@task()
def delete_past_salts() -> dict[str, Any]:
    """Delete the salt of every day that is over (every 5 minutes: one cheap DELETE), so a
    visitor hash can never be recomputed more than minutes after its day ended."""
    from .salts import delete_past_salts

    return {"salts_deleted": delete_past_salts()}


@task()
def roll_up() -> dict[str, Any]:
    """Bring the daily rollups up to date (every 5 minutes: today's figures are at most 5
    minutes old)."""
    from tidings.lib import ingest

    from .rollups import rollup_recent

    ingest.flush()  # this process's waiting page views, and Redis's when configured
    return rollup_recent()
