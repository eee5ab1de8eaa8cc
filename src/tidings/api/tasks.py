"""Background work of the API app, run by ``tidings worker`` (django.tasks)."""

from __future__ import annotations

from django.tasks import task


@task()
def send_due_webhooks() -> dict[str, int]:
    """Send the webhook deliveries that are due (new events, and retries whose time has come).

    Enqueued after every event, and every 30 seconds by the scheduler for the retries.  A run
    starts no attempt after ``RUN_SECONDS``: the rest waits for the next run, and the worker's
    other tasks (imports, exports) are not held up behind slow receivers.
    """
    from .webhooks import RUN_SECONDS, send_due

    return send_due(max_seconds=RUN_SECONDS)


@task()
def prune_idempotency_keys() -> int:
    """Forget the ``Idempotency-Key`` answers older than 24 hours (hourly)."""
    from .idempotency import prune

    return prune()
