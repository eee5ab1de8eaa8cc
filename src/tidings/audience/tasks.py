"""Background work of the audience app, run by ``tidings worker`` (django.tasks)."""

from __future__ import annotations

from django.tasks import task

from .imports import run_import
from .imports.lease import resume_import
from .models import Import


@task()
def import_contacts(import_id: int) -> str:
    """Run a queued import (its upload is in imports_dir()); progress is kept on the Import.

    Returns the final status.  A failed import is marked failed with a one-line reason and
    raises ImportFailed, whose message holds no personal data.
    """
    imp = Import.objects.select_related("mailing_list", "operator").get(pk=import_id)
    if imp.status not in (Import.Status.QUEUED, Import.Status.RUNNING):
        return imp.status  # finished or failed already: a task enqueued twice runs once
    if imp.status == Import.Status.RUNNING:
        # An earlier attempt died with its worker.  Imports are idempotent (what it wrote is
        # found and left alone), so it starts again from the first row, its counts carried over.
        return resume_import(imp, actor_label="worker", check_alive=False).status
    return run_import(imp, actor_label="worker").status


@task()
def check_upload(import_id: int) -> str:
    """Check an uploaded file before it is imported: a dry run whose counts the operator sees
    with the preview (imports.preview).  Returns the import's status (READY once checked)."""
    from .imports.preview import check_import

    imp = Import.objects.select_related("mailing_list", "operator").filter(pk=import_id).first()
    if imp is None or imp.status != Import.Status.CHECKING:
        return imp.status if imp else "gone"  # cancelled, confirmed, or checked again since
    return check_import(imp).status


@task()
def purge_pending_signups(older_than_days: int | None = None) -> dict[str, int]:
    """Delete sign-ups nobody confirmed within TIDINGS_PENDING_DAYS (see do_purge_unconfirmed).

    Returns counts only.  Meant to run daily (tidings.lib.periodic) or from cron as
    ``tidings audience purge-pending``.
    """
    from .actions import do_purge_unconfirmed

    result = do_purge_unconfirmed(older_than_days)
    return {
        "subscriptions": result.subscriptions,
        "contacts": result.contacts,
        "events": result.events,
    }


@task()
def take_audience_snapshot() -> dict[str, int]:
    """The periodic job ``audience.snapshot``: the dashboard's audience figures, counted now
    (``stats.take_snapshot``)."""
    from .stats import take_snapshot

    return take_snapshot()
