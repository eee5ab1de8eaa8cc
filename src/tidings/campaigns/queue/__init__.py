"""The delivery queue: one ``Delivery`` row per recipient of a campaign, one ``OutgoingMessage``
row per one-off message; workers claim rows, send them and mark them.

This package is the bottom of the sending layers (models → rendering → **queue** → lifecycle →
engine): it imports only the models and its configuration (``campaigns.config``).  It never
changes a campaign's state (the lifecycle finishes and pauses campaigns), never renders, sends
or suppresses anyone (the engine does, calling the audience's actions).

A row's life::

    queued ──claim──▶ sending ──server said 250──▶ sent
      ▲                  │ ├──5xx, or out of attempts──▶ failed
      │                  │ └──may not be emailed any more──▶ skipped
      └──4xx: retry later┘
      └──released (paused, stopping, server unreachable) / recovered (its worker vanished)
    held ──the A/B winner is known, or the recipient's local hour came──▶ queued

**Claiming** (``claims``).  A worker claims a small batch with one statement that moves rows from
``queued`` to ``sending`` and stamps them with its id and a lease (``SELECT … FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so workers on several machines never take the same row; on SQLite the
statement is a single write transaction).  Only rows of campaigns whose status is ``sending`` are
claimed, and the worker re-reads the statuses between batches, so pause and cancel take effect
within a second.

**Marking** (``results``).  A row becomes ``sent`` only after the server accepted the message.
Results are written in small, frequent batches (every ``TIDINGS_DELIVERY_FLUSH_MS``, default
50 ms, or every 50 results), each a conditional UPDATE on ``leased_by = <this worker>``.

**The in-flight window.**  A worker holds at most ``TIDINGS_DELIVERY_WINDOW`` rows (default 200)
in ``sending`` at once: claimed, being built, being sent, or sent and not yet recorded.  If the
worker is killed, those rows go back to the queue and are sent again; the ones the server had
already accepted reach their recipient twice.  In practice that is the messages on the wire plus
those accepted since the last flush — about concurrency + rate × flush interval (10 + 1,500/s ×
50 ms ≈ 85 at full speed) — and never more than the window.  Recovery logs and records
(``DeliveryWorker.recovered_rows``) how many rows it returned: an upper bound on the copies that
went out twice.  The Message-ID of a row never changes, so receivers that deduplicate on it drop
the second copy.

**Recovery** (``workers``).  Every worker registers a ``DeliveryWorker`` row and refreshes it
(and its leases) every few seconds.  At start-up and then periodically, a worker returns to the
queue the rows of workers whose heartbeat is older than the lease
(``TIDINGS_DELIVERY_LEASE_SECONDS``, default 30), and at once those of a worker whose process is
gone from the same pid namespace (``worker_gone``: the same boot and namespace, not merely the
same host name, which containers may share), so a worker restarted after a crash carries on
without waiting for the lease to lapse.

**Failures.**  Temporary failures (4xx, SES's 454 throttling, a dropped connection) are retried
up to ``TIDINGS_DELIVERY_MAX_ATTEMPTS`` (default 5) attempts, after ``TIDINGS_RETRY_BASE_SECONDS``
(default 60) × 2^(attempt-1) seconds, ±50% jitter, at most an hour.  Permanent failures (5xx) fail
the row; the engine passes a 5xx saying the mailbox does not exist to the audience's
``do_record_hard_bounce``.  A server that cannot be reached costs no attempt: the rows are
released, and the engine's circuit breaker asks the lifecycle to pause the campaign.

**Finishing** is the lifecycle's (``lifecycle.finish_if_done``): a campaign is finished when none
of its rows is queued or sending.  Rows waiting for a retry keep it sending.
"""

from tidings.lib.processes import process_alive, process_start_time

from .claims import (
    Claimed,
    claim_batch,
    claim_deliveries,
    claim_outgoing,
    sending_campaign_ids,
)
from .deferrals import (
    clear_deferrals,
    deferral_text,
    deferral_texts,
    deferring,
    note_deferrals,
)
from .enqueue import default_transport, enqueue_message, new_message
from .populate import (
    POPULATE_BATCH,
    assign_variants,
    populate_deliveries,
    release_due,
    release_held,
)
from .reads import (
    FINAL,
    delivery_counts,
    failed_deliveries,
    retry_failed,
    unfinished_rows,
    untracked_count,
)
from .results import Result, record_results, retry_delay
from .workers import (
    heartbeat,
    live_workers,
    purge_history,
    recover_abandoned,
    register_worker,
    stop_worker,
)

__all__ = [
    "FINAL",
    "POPULATE_BATCH",
    "Claimed",
    "Result",
    "assign_variants",
    "claim_batch",
    "claim_deliveries",
    "claim_outgoing",
    "clear_deferrals",
    "default_transport",
    "deferral_text",
    "deferral_texts",
    "deferring",
    "delivery_counts",
    "enqueue_message",
    "failed_deliveries",
    "heartbeat",
    "live_workers",
    "new_message",
    "note_deferrals",
    "populate_deliveries",
    "process_alive",
    "process_start_time",
    "purge_history",
    "record_results",
    "recover_abandoned",
    "register_worker",
    "release_due",
    "release_held",
    "retry_delay",
    "retry_failed",
    "sending_campaign_ids",
    "stop_worker",
    "unfinished_rows",
    "untracked_count",
]
