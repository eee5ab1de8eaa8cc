"""Background work of the rights app, run by ``tidings worker`` (django.tasks)."""

from __future__ import annotations

from typing import Any

from django.tasks import task


@task()
def run_retention_sweep() -> dict[str, Any]:
    """Erase every record whose retention has run out (see rights/retention.py).

    Runs daily (registered with tidings.lib.periodic in apps.py), or from cron as
    ``tidings retention run``.  Returns counts only.
    """
    from .retention import run_retention

    return run_retention(actor_label="worker").summary()


@task()
def remind_near_due_requests() -> dict[str, Any]:
    """Remind privacy officers of rights requests within a week of their due date (once per due
    date).  Runs hourly (registered in apps.py).  Returns the request ids reminded."""
    from .actions import do_remind_near_due

    return {"reminded": do_remind_near_due()}
