"""The delivery workers that are (or were) running: the owners of the queue's leases."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class DeliveryWorker(models.Model):
    """One ``tidings worker`` process sending mail.  A row claimed by a worker carries the
    worker's id in ``leased_by``; the worker's heartbeat (``last_seen``) keeps those leases alive.
    When the heartbeat goes stale, or the process is gone from its host, another worker returns
    the rows to the queue and records how many there were (``recovered_rows``).

    A ``tidings worker`` that runs background tasks keeps a row of its own too (``sends_mail``
    false): its heartbeat is how a worker on another machine knows the task it was running may be
    run again (``tidings.web.task_worker``).  It claims no delivery rows and does not count as a
    delivery worker."""

    id = models.CharField(max_length=64, primary_key=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    # When the process started, as the kernel counts it: with the pid, it tells a live process
    # from a later one that happens to have been given the same pid.
    process_started = models.CharField(max_length=40, blank=True)
    # Which pids ``pid`` is one of: the boot and pid namespace (``queue.workers.pid_namespace``).
    # Only a process with the same value looks the pid up; "" on rows of older versions.
    pid_namespace = models.CharField(max_length=64, blank=True)
    sends_mail = models.BooleanField(default=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    recovered_at = models.DateTimeField(null=True, blank=True)
    recovered_rows = models.PositiveIntegerField(
        default=0,
        help_text="Rows it held when it vanished, returned to the queue.  Each may have been "
        "delivered already (the in-flight window), so may go out twice.",
    )

    # What the worker publishes with each heartbeat for /metrics (campaigns/worker_state.py):
    # messages per transport and outcome, send rate, circuit-breaker ratios.  No personal data.
    state = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Worker {self.id} ({self.host}:{self.pid})"


class DomainDeferral(models.Model):
    """A receiving domain that asked us to slow down (421 "too many connections", 454
    throttling...): no worker sends to it before ``retry_at``.  Shared by every worker through
    the database; each new deferral doubles the wait, up to a cap (``queue.deferrals``).  A
    message the domain accepts once the wait is over ends it (the row is deleted)."""

    domain = models.CharField(max_length=253, unique=True)
    failures = models.PositiveIntegerField(default=1, help_text="Deferrals in a row.")
    retry_at = models.DateTimeField(db_index=True)
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(
        max_length=300, blank=True, help_text="The server's last reply (no addresses)."
    )
    since = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["retry_at"]

    def __str__(self) -> str:
        return f"{self.domain} deferring until {self.retry_at:%H:%M}"
