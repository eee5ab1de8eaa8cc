"""Knowing that a running import was interrupted, and resuming it.

An import that runs marks its row with the process running it (host and pid) and a heartbeat,
renewed with every batch it commits.  A process killed outright (kill -9, the machine lost) can
say nothing, so its import stays "running"; it is *interrupted* when

- its heartbeat is older than the lease (``TIDINGS_IMPORT_LEASE_SECONDS``, default 120: a batch
  takes seconds, so a live import renews it many times over), or
- it ran on this host and its process is gone (seen at once, without waiting for the lease).

An interrupted import is shown as such, with the command that resumes it
(``resume_command``).  Resuming (``resume_import``) runs the same Import again from the first
row: what the interrupted run committed is found and left alone (an import is idempotent: no
contact, subscription or consent event is written twice), and the counts of the batches it had
committed (kept in the same transactions as the rows) are carried over, so the finished import
counts what the two runs did together, as one run would have.
"""

from __future__ import annotations

import os
import shlex
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from tidings.lib.audit import audit
from tidings.lib.processes import process_alive, this_host

from ..models import Import
from .source import ImportFailed

LEASE_SECONDS = 120  # default of settings.TIDINGS_IMPORT_LEASE_SECONDS

# Rows an interrupted run wrote that a resumed run finds again, and so would count as unchanged.
CARRIED = ("created", "updated", "subscribed")


class ImportStillRunning(ImportFailed):
    """The import's process is alive (its lease holds): it cannot be resumed."""


def lease_seconds() -> int:
    return int(getattr(settings, "TIDINGS_IMPORT_LEASE_SECONDS", LEASE_SECONDS))


def claim(imp: Import) -> None:
    """Mark ``imp`` (in memory: the caller saves it) as run by this process, now."""
    imp.run_host = this_host()
    imp.run_pid = os.getpid()
    imp.heartbeat_at = timezone.now()


CLAIM_FIELDS = ["run_host", "run_pid", "heartbeat_at"]


def is_interrupted(imp: Import, now: datetime | None = None) -> bool:
    """Whether ``imp`` says it is running but nothing runs it any more."""
    if imp.status != Import.Status.RUNNING:
        return False
    seen = imp.heartbeat_at or imp.started_at
    now = now or timezone.now()
    if seen is None or now - seen > timedelta(seconds=lease_seconds()):
        return True
    if imp.run_pid and imp.run_host == this_host():
        return not process_alive(imp.run_pid, "")
    return False


def status_text(imp: Import) -> str:
    """The import's status in words, "Interrupted" for a running one nothing runs."""
    return "Interrupted" if is_interrupted(imp) else imp.get_status_display()


def resume_command(imp: Import) -> str:
    """The command that resumes ``imp``.  A command-line import read the operator's own file in
    place (not kept by tidings): the command names it, to be given again from where it is."""
    if imp.stored_file:
        return f"tidings import contacts --resume {imp.pk}"
    name = shlex.quote(imp.original_filename or "FILE.csv")
    return f"tidings import contacts {name} --resume {imp.pk}"


def resume_import(
    imp: Import,
    path: Path | None = None,
    *,
    actor_label: str = "",
    check_alive: bool = True,
    progress=None,
) -> Import:
    """Run an interrupted (or failed) import again on the same row, its counts carried over.

    Raises ImportStillRunning when ``check_alive`` and the import's process is alive, and
    ImportFailed when the import is finished or not to be resumed.
    """
    from .run import run_import

    imp.refresh_from_db()
    if imp.dry_run:
        raise ImportFailed("a dry run is not resumed: run it again")
    if imp.status == Import.Status.RUNNING:
        if check_alive and not is_interrupted(imp):
            raise ImportStillRunning(
                f"import {imp.pk} is still running (process {imp.run_pid} on {imp.run_host})"
            )
    elif imp.status != Import.Status.FAILED:
        raise ImportFailed(f"import {imp.pk} is {imp.get_status_display().lower()}: not resumed")
    carried = {name: getattr(imp, name) for name in CARRIED}
    audit(
        "import.resumed",
        actor=imp.operator,
        actor_label=actor_label,
        obj=imp,
        was=imp.status,
        **carried,
    )
    return run_import(imp, path, actor_label=actor_label, carried=carried, progress=progress)
