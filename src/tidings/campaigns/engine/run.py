"""The engine's run loop: the database thread.

The thread that calls ``Engine.run`` is the database thread: it claims rows (``queue``), loads
the contacts and checks, in one query per batch, that each may still be emailed (``jobs``), hands
the rows to the event loop (``dispatcher``), collects what happened and records it in small
batches, passing hard bounces to the audience and asking the lifecycle to finish or pause
campaigns.  It is the only thread that touches the database, so the engine also runs inside a
test's transaction.

Everything the database thread holds is bounded by the in-flight window (see ``queue``), so a
worker's memory does not grow with the size of a campaign.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from queue import Empty, SimpleQueue
from typing import Any

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from tidings import signals
from tidings.audience.suppression import do_record_hard_bounce

from .. import fingerprint, protection, queue
from ..config import FLUSH_SIZE, DeliveryConfig
from ..lifecycle import finish_if_done, pause_campaign
from ..models import Campaign, Delivery, OutgoingMessage
from ..queue import Claimed, Result
from ..rendering import TemplateProblem
from ..transports.base import AUTH, CONNECTION, THROTTLED, TransportConfig
from ..transports.config import build_transport, transport_configs
from ..worker_state import WorkerState
from .breaker import Breaker
from .builders import BuilderPool, builder_count
from .context import CampaignContext, Job, OneOffFactories
from .dispatcher import TEMPLATE, Dispatcher, EventLoopThread
from .jobs import campaign_jobs, one_off_jobs, withdrawn

logger = logging.getLogger("tidings.campaigns.engine")

# How often the rows waiting for the senders are asked again whether they may still go.
RECHECK_SECONDS = 1.0
# How long a row just claimed (checked then) waits before it is asked again: at full speed most
# rows were claimed since the last re-check, and asking about those claimed a moment ago is
# waste.  A quarter of a second keeps the promise near a second: an unsubscribe stops a claimed
# message within RECHECK_SECONDS + RECHECK_FRESH_SECONDS of being committed.
RECHECK_FRESH_SECONDS = 0.25

CHANGED_SINCE_CONFIRMED = (
    "Paused automatically: what it sends changed after it was confirmed; another operator must "
    "confirm it (resume it) again"
)


def _announce_hard_bounces(rows: list[Claimed]) -> None:
    """A mailbox refused as unknown while sending is a hard bounce as much as a bounce report
    is: once the result is recorded, ``delivery_bounced`` (hard) says so, as the report's
    processing does, so journeys take the person out at once and the outgoing webhooks send
    ``delivery.bounced``."""
    for row in rows:
        is_delivery = row.kind == "d"
        transaction.on_commit(
            partial(
                signals.delivery_bounced.send,
                sender=Delivery if is_delivery else OutgoingMessage,
                contact_id=row.contact_id,
                delivery_id=row.id if is_delivery else None,
                hard=True,
            )
        )


@dataclass
class EngineStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0
    lost: int = 0  # results for rows another worker had taken back meanwhile
    claimed: int = 0
    paused: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)
    seconds: float = 0.0


class Engine:
    """Runs the queue in the calling thread (see the module docstring).

    ``config``: a ``DeliveryConfig`` (default: read from the settings now); ``window``: rows
    held at once (claimed and not yet recorded), ``chunk``: rows per claim, ``flush_ms``: how long
    results may wait before they are written override its fields.
    """

    def __init__(
        self,
        *,
        window: int | None = None,
        chunk: int | None = None,
        flush_ms: float | None = None,
        transports: Iterable[TransportConfig] | None = None,
        stop: threading.Event | None = None,
        resilient: bool = False,
        config: DeliveryConfig | None = None,
    ) -> None:
        if config is None:
            config = DeliveryConfig.from_settings(window=window, chunk=chunk, flush_ms=flush_ms)
        elif window or chunk or flush_ms:
            overrides: dict[str, Any] = {"window": window, "chunk": chunk, "flush_ms": flush_ms}
            config = replace(config, **{k: v for k, v in overrides.items() if v})
        self.config = config
        self.window = config.window
        self.chunk = min(config.window, config.chunk)
        self.flush_seconds = config.flush_seconds
        self.configs = list(transports) if transports is not None else transport_configs()
        self.stop = stop or threading.Event()
        self.resilient = resilient
        self.stats = EngineStats()
        self.results: SimpleQueue[Result] = SimpleQueue()
        self.pending: list[Result] = []
        self.pending_since = 0.0
        self.outstanding = 0
        self.outstanding_by_campaign: collections.Counter[int] = collections.Counter()
        self.contexts: dict[int, CampaignContext] = {}
        self.breaker = Breaker(config)
        self.published = WorkerState()  # numbers for /metrics, on the heartbeat row
        self.unreachable: dict[int, tuple[float, str]] = {}  # campaign → (since when, why)
        # A receiving server refused a message for good since the last protection check: check
        # again within a second, not in ``CHECK_SECONDS`` (by then a small campaign is over).
        self.refused_since_protect = False
        self.template_failed: dict[int, str] = {}
        self.touched: set[int] = set()
        self.finish_checked: dict[int, float] = {}
        self.cursors: dict[int, tuple[int, float]] = {}  # campaign → (last id, since when)
        self.turn = 0
        self.worker_id = ""
        self.builders: BuilderPool | None = None
        # Receiving domains that asked us to slow down -> when they may be sent to again
        # (queue.deferrals: shared by the workers through the database, read every second).
        self.deferring: dict[str, datetime] = {}
        # Campaign rows handed to the senders and not yet sent, by id, with when they were last
        # checked (``time.monotonic()``): asked again every second whether they may still go
        # (``_recheck``), since a slow server or a tight rate can keep them waiting in the event
        # loop for minutes after they were claimed.
        self.waiting: dict[int, tuple[Claimed, float]] = {}

    # -- the loop --
    def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> EngineStats:
        started = time.monotonic()
        deadline = started + max_seconds if max_seconds else None
        heartbeat_every = max(0.5, self.config.lease_seconds / 6)
        self.transports = [build_transport(config) for config in self.configs]
        self.worker_id = queue.register_worker().pk
        queue.recover_abandoned(self.worker_id, config=self.config)
        queue.purge_history(config=self.config)
        self.next_purge = time.monotonic() + 3600
        self.transport_names = {t.name for t in self.transports}
        self.one_off = OneOffFactories(self.config)
        # Builder processes only pay for transports that take the message's bytes (SMTP).
        processes = builder_count(self.config.builders)
        wants_bytes = all(t.wants_bytes for t in self.transports)
        self.builders = BuilderPool(processes) if processes and wants_bytes else None
        self.thread = EventLoopThread()
        self.thread.start()
        self.thread.ready.wait()
        self.dispatcher = Dispatcher(
            self.transports,
            self.results,
            self.one_off,
            domain_hold_seconds=self.config.domain_backoff_seconds,
        )
        self.thread.call(self._start_dispatcher())
        self._set_share()
        logger.info(
            "delivery worker %s started: %s; window %d rows; %s",
            self.worker_id,
            ", ".join(f"{t.describe()} ×{t.concurrency}" for t in self.transports),
            self.window,
            f"{self.builders.processes} builder processes" if self.builders else "no builders",
        )
        next_heartbeat = time.monotonic() + heartbeat_every
        next_refresh = next_release = next_deferrals = 0.0
        next_protect = 0.0
        idle_rounds = 0
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                try:
                    if now >= next_heartbeat:
                        self._heartbeat()
                        next_heartbeat = now + heartbeat_every
                    if now >= next_release:
                        # Held rows whose local hour has come (an indexed look-up).
                        queue.release_due(timezone.now())
                        next_release = now + 5.0
                    if now >= next_refresh:
                        self._refresh_campaigns()
                        next_refresh = now + 0.5
                    if now >= next_deferrals:
                        self._read_deferrals()
                        self._recheck(now)
                        next_deferrals = now + RECHECK_SECONDS
                    if now >= next_protect or (
                        self.refused_since_protect
                        and now >= next_protect - protection.CHECK_SECONDS + 1.0
                    ):
                        self.refused_since_protect = False
                        self._protect()
                        next_protect = now + protection.CHECK_SECONDS
                    claimed = self._claim()
                    self._collect(0.0 if claimed else self._wait_time(until_idle))
                    if self.pending and (
                        len(self.pending) >= FLUSH_SIZE
                        or time.monotonic() - self.pending_since >= self.flush_seconds
                        or self.outstanding == 0
                    ):
                        self._flush()
                except DatabaseError:
                    if not self.resilient:
                        raise
                    logger.exception("delivery: database error; trying again in a second")
                    if not connection.in_atomic_block:
                        close_old_connections()
                        connection.close()
                    self.stop.wait(1.0)
                    continue
                if until_idle:
                    idle = not claimed and self.outstanding == 0 and not self.pending
                    idle_rounds = idle_rounds + 1 if idle else 0
                    if idle_rounds >= 2:
                        break
        finally:
            self._shutdown()
        self.stats.seconds = time.monotonic() - started
        return self.stats

    async def _start_dispatcher(self) -> None:
        self.dispatcher.start()

    def _wait_time(self, until_idle: bool) -> float:
        if self.outstanding:
            return self.flush_seconds
        return 0.0 if until_idle else self.config.idle_seconds

    def _collect(self, timeout: float) -> None:
        """Take results from the event loop, waiting up to ``timeout`` for the first."""
        try:
            result = self.results.get(timeout=timeout) if timeout > 0 else self.results.get_nowait()
        except Empty:
            return
        while True:
            self._take(result)
            try:
                result = self.results.get_nowait()
            except Empty:
                return

    def _take(self, result: Result) -> None:
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.append(result)
        self.outstanding -= 1
        if result.row.kind == "d":
            self.waiting.pop(result.row.id, None)
        if result.row.campaign_id is not None:
            self.outstanding_by_campaign[result.row.campaign_id] -= 1

    def _flush(self) -> None:
        batch = self.pending
        with transaction.atomic():
            for transport in self.transports:
                transport.commit()
            changed = queue.record_results(self.worker_id, batch, config=self.config)
            bounced = [r.row for r in batch if r.hard_bounce and r.row.contact_id]
            if bounced:
                do_record_hard_bounce([row.contact_id for row in bounced if row.contact_id])
                _announce_hard_bounces(bounced)
            self._note_domains(batch)
        if any(r.outcome == "failed" and (r.code or 0) >= 500 for r in batch):
            self.refused_since_protect = True
        self.pending = []
        self.published.record(batch)
        if changed < len(batch):
            lost = len(batch) - changed
            self.stats.lost += lost
            logger.warning(
                "%d results could not be recorded: another worker had taken the rows back "
                "(they may go out twice)",
                lost,
            )
        for result in batch:
            outcome = result.outcome
            if outcome == "sent":
                self.stats.sent += 1
            elif outcome == "retry":
                self.stats.retried += 1
            elif outcome == "failed":
                self.stats.failed += 1
            elif outcome == "skipped":
                self.stats.skipped += 1
            else:
                self.stats.released += 1
            campaign_id = result.row.campaign_id
            if (
                campaign_id is None
                or outcome == "skipped"
                or (outcome == "released" and not result.kind)
            ):
                continue
            error = None if outcome == "sent" else self._describe_error(result)
            self.breaker.record(campaign_id, error)
            if result.kind == TEMPLATE:
                self.template_failed.setdefault(campaign_id, result.error)
            elif outcome == "sent":
                self.unreachable.pop(campaign_id, None)
            elif outcome == "released" and result.kind in (CONNECTION, AUTH):
                self.unreachable.setdefault(campaign_id, (time.monotonic(), error or ""))
        for campaign_id, error in self.template_failed.items():
            self._pause(campaign_id, f"Paused automatically: the template failed: {error}")
        self.template_failed.clear()
        for campaign_id in {r.row.campaign_id for r in batch if r.row.campaign_id is not None}:
            reason = self.breaker.tripped(campaign_id)
            if reason:
                self._pause(campaign_id, reason)
        self._pause_unreachable()

    def _recheck(self, now: float | None = None) -> None:
        """Withdraw the waiting messages of people who unsubscribed, were erased or suppressed
        since their rows were claimed: the senders drop them (or, if a sender already took one
        and is waiting for the rate limit, do not send it) and report them skipped.  Only a
        message already being handed to the server can still go.  ``now``: the loop's clock
        (``time.monotonic()``), which schedules the re-checks a second apart."""
        # Rows checked a moment ago (claimed just before this re-check: their claim checked
        # them) are not asked again yet (RECHECK_FRESH_SECONDS).
        now = time.monotonic() if now is None else now
        by_campaign: dict[int, list[Claimed]] = collections.defaultdict(list)
        for row, checked in self.waiting.values():
            if checked <= now - RECHECK_FRESH_SECONDS and row.campaign_id in self.contexts:
                by_campaign[row.campaign_id].append(row)
        reasons: dict[int, str] = {}
        for campaign_id, rows in by_campaign.items():
            reasons.update(withdrawn(self.contexts[campaign_id], rows))
            for row in rows:
                self.waiting[row.id] = (row, now)
        if reasons:
            self.thread.soon(self.dispatcher.withdraw, reasons)

    def _read_deferrals(self) -> None:
        self.deferring = queue.deferring()
        self.thread.soon(self.dispatcher.set_deferring, dict(self.deferring))

    def _note_domains(self, batch: list[Result]) -> None:
        """Domains that asked us to slow down are deferred for every worker; those that took a
        message once their wait was over are not any more (queue.deferrals)."""
        throttled = {
            r.row.domain: (r.code, r.error)
            for r in batch
            if r.kind == THROTTLED
            and r.at_recipient
            and r.row.domain
            and r.outcome in ("retry", "failed")
        }
        now = timezone.now()
        accepted = {
            r.row.domain for r in batch if r.outcome == "sent" and r.row.domain in self.deferring
        }
        if accepted - set(throttled):
            queue.clear_deferrals(accepted - set(throttled), now=now)
            for domain in accepted - set(throttled):
                if self.deferring[domain] <= now:
                    del self.deferring[domain]
        if throttled:
            self.deferring.update(queue.note_deferrals(throttled, now=now, config=self.config))
            logger.info("deferring %s: asked to slow down", ", ".join(sorted(throttled)))
        if throttled or accepted:
            self.thread.soon(self.dispatcher.set_deferring, dict(self.deferring))

    def _hold_deferred(self, jobs: list[Job]) -> list[Job]:
        """The jobs to send now; those of deferred domains go back to the queue until their
        domain's time (no attempt spent), so the rest of the queue flows on."""
        if not self.deferring:
            return jobs
        now = timezone.now()
        keep = []
        for job in jobs:
            retry_at = self.deferring.get(job.row.domain)
            if retry_at is None or retry_at <= now:
                keep.append(job)
                continue
            text = queue.deferral_text(job.row.domain, retry_at)
            delay = float(max(1, math.ceil((retry_at - now).total_seconds())))  # grouped
            self.results.put(Result(job.row, "released", error=text, delay=delay))
        return keep

    def _protect(self) -> None:
        """Pause the campaigns whose complaint or hard-bounce rate passed its limit (see
        ``campaigns.protection``), and have their author and the owners emailed."""
        self._flush_if_pending()
        for campaign_id in sorted(self.contexts):
            reason = protection.protection_reason(campaign_id, self.config)
            if reason is None:
                continue
            if self._pause(campaign_id, reason):
                protection.notify_paused_task.enqueue(campaign_id, reason)

    def _pause_unreachable(self) -> None:
        """A campaign whose messages could not be handed to any server for
        ``TIDINGS_UNREACHABLE_PAUSE_SECONDS`` (default 20) is paused, however few it tried."""
        limit = self.config.unreachable_pause_seconds
        now = time.monotonic()
        for campaign_id, (since, error) in list(self.unreachable.items()):
            if now - since >= limit:
                del self.unreachable[campaign_id]
                self._pause(campaign_id, f"Paused automatically: {error}")

    def _describe_error(self, result: Result) -> str:
        if result.kind == CONNECTION:
            transport = next((t for t in self.transports if t.name == result.transport), None)
            where = transport.describe() if transport else result.transport
            return f"server unreachable: {where}: {result.error.partition(': ')[2]}"
        if result.kind == AUTH:
            # Our set-up, not the list nor the content: the fix is in the transport's settings.
            transport = next((t for t in self.transports if t.name == result.transport), None)
            where = transport.describe() if transport else result.transport
            return (
                f"the SMTP server {where} refused to send for us "
                f"({result.error.partition(': ')[2]}): check the transport's user name and "
                "password (TIDINGS_TRANSPORTS), that it logs in over TLS, and that the server "
                "lets that account relay mail from the sender address; nobody was suppressed"
            )
        return result.error

    def _pause(self, campaign_id: int, reason: str) -> bool:
        self.breaker.reset(campaign_id)
        paused = pause_campaign(campaign_id, reason)
        if paused:
            self.stats.paused.append(campaign_id)
        self._forget_campaigns({campaign_id})
        return paused

    def _forget_campaigns(self, ids: set[int]) -> None:
        for campaign_id in ids:
            self.contexts.pop(campaign_id, None)
            self.cursors.pop(campaign_id, None)
        self.thread.soon(self.dispatcher.drop, ids)

    def _heartbeat(self) -> None:
        state = self.published.snapshot(self)
        if not queue.heartbeat(self.worker_id, config=self.config, state=state):
            logger.error(
                "worker %s was declared gone by another worker; its rows were returned to the "
                "queue; registering again",
                self.worker_id,
            )
            self.worker_id = queue.register_worker().pk
        queue.recover_abandoned(self.worker_id, config=self.config)
        self._set_share()
        if time.monotonic() >= self.next_purge:
            queue.purge_history(config=self.config)
            self.next_purge = time.monotonic() + 3600

    def _set_share(self) -> None:
        share = 1.0 / max(1, queue.live_workers(config=self.config))
        self.thread.soon(self.dispatcher.set_share, share)

    def _refresh_campaigns(self) -> None:
        """Re-read which campaigns are sending: stop those that no longer are, prepare new ones,
        and finish the ones this worker has nothing left of."""
        sending = set(queue.sending_campaign_ids())
        gone = set(self.contexts) - sending
        if gone:
            self._forget_campaigns(gone)
        for campaign_id in sorted(sending - set(self.contexts)):
            campaign = (
                Campaign.objects.select_related("sender", "layout", "template__layout")
                .filter(pk=campaign_id)
                .first()
            )
            if campaign is None:
                continue
            if campaign.transport and campaign.transport not in self.transport_names:
                self._pause(campaign_id, f"No transport is named {campaign.transport!r}")
                continue
            if fingerprint.enforced() and fingerprint.changed_since_confirmed(
                campaign, audience=False
            ):
                # Four-eyes sending: what it would send now is not what was confirmed.
                self._pause(campaign_id, CHANGED_SINCE_CONFIRMED)
                continue
            try:
                self.contexts[campaign_id] = CampaignContext(campaign, self.config)
            except TemplateProblem as exc:
                self._pause(campaign_id, f"Paused automatically: the template failed: {exc}")
            except DatabaseError:
                raise
            except Exception as exc:
                logger.exception("campaign %s could not be prepared for sending", campaign_id)
                self._pause(
                    campaign_id, f"Could not be prepared for sending ({type(exc).__name__})"
                )

    def _room(self) -> int:
        return self.window - self.outstanding - len(self.pending)

    def _claim(self) -> bool:
        """Claim a batch if there is room in the window; True if anything was claimed."""
        room = self._room()
        if room < min(self.chunk, self.window // 2 or 1):
            return False
        claimed = queue.claim_outgoing(self.worker_id, min(room, self.chunk), config=self.config)
        if claimed:
            self._hand_over(self._one_off_jobs(claimed))
            return True
        ids = sorted(self.contexts)
        for offset in range(len(ids)):
            campaign_id = ids[(self.turn + offset) % len(ids)]
            limit = min(room, self.chunk)
            rows = queue.claim_deliveries(
                self.worker_id,
                campaign_id,
                limit,
                after=self._cursor(campaign_id),
                config=self.config,
            )
            self._advance(campaign_id, rows[-1].id if len(rows) == limit else 0)
            if rows:
                self.turn = (self.turn + offset + 1) % len(ids)
                self.touched.add(campaign_id)
                context = self.contexts[campaign_id]
                jobs = self._campaign_jobs(context, rows)
                if self.builders is not None and jobs:
                    self.builders.build(context, jobs, self._built)
                else:
                    self._hand_over(jobs)
                return True
            if not self.outstanding_by_campaign[campaign_id] and self._finish_check_due(
                campaign_id
            ):
                self._flush_if_pending()
                if finish_if_done(campaign_id):
                    self.stats.finished.append(campaign_id)
                    self._forget_campaigns({campaign_id})
                    return False
        return False

    def _cursor(self, campaign_id: int) -> int:
        """Where the next claim of the campaign starts.  Claims walk the queue upwards from the
        last id claimed (see ``queue.claim_deliveries``); at the end of the queue, and every
        half minute, from the start again, for the rows that went back below the cursor
        (released, or waiting for a retry)."""
        after, since = self.cursors.get(campaign_id, (0, time.monotonic()))
        if time.monotonic() - since > 30:
            after = 0
        return after

    def _advance(self, campaign_id: int, last_id: int) -> None:
        """Move the cursor to ``last_id``, or (0) back to the start."""
        if last_id == 0 or campaign_id not in self.cursors:
            self.cursors[campaign_id] = (last_id, time.monotonic())
        else:
            self.cursors[campaign_id] = (last_id, self.cursors[campaign_id][1])

    def _finish_check_due(self, campaign_id: int) -> bool:
        """At most one "is it finished?" query per campaign per second."""
        now = time.monotonic()
        if self.finish_checked.get(campaign_id, 0.0) > now - 1.0:
            return False
        self.finish_checked[campaign_id] = now
        return True

    def _flush_if_pending(self) -> None:
        if self.pending:
            self._flush()

    def _built(self, jobs: list[Job]) -> None:
        """Called in the builder pool's thread with a built slice: to the senders, unless its
        campaign stopped sending meanwhile (then, as ``Dispatcher.drop`` does, released)."""
        for job in jobs:
            context = job.campaign
            if context is not None and self.contexts.get(context.id) is not context:
                job.failure = Result(job.row, "released")
        self.thread.soon(self.dispatcher.submit, jobs)

    def _hand_over(self, jobs: list[Job]) -> None:
        if not jobs:
            return
        self.thread.soon(self.dispatcher.submit, jobs)

    def _count_claimed(self, rows: list[Claimed]) -> None:
        self.stats.claimed += len(rows)
        self.outstanding += len(rows)
        for row in rows:
            if row.campaign_id is not None:
                self.outstanding_by_campaign[row.campaign_id] += 1

    def _campaign_jobs(self, context: CampaignContext, rows: list[Claimed]) -> list[Job]:
        self._count_claimed(rows)
        jobs, skipped = campaign_jobs(context, rows)
        for result in skipped:
            self.results.put(result)
        jobs = self._hold_deferred(jobs)
        checked = time.monotonic()  # campaign_jobs checked them just now
        self.waiting.update((job.row.id, (job.row, checked)) for job in jobs)
        return jobs

    def _one_off_jobs(self, rows: list[Claimed]) -> list[Job]:
        self._count_claimed(rows)
        jobs, skipped = one_off_jobs(rows, self.one_off, self.transport_names)
        for result in skipped:
            self.results.put(result)
        return self._hold_deferred(jobs)

    def _shutdown(self) -> None:
        """Stop cleanly: what is on the wire finishes, the rest goes back to the queue."""
        try:
            if self.builders is not None:  # slices not built yet come back released
                self.builders.close()
            try:
                self.thread.call(self.dispatcher.close(), timeout=120)
            except Exception:
                logger.exception("delivery: stopping the senders failed")
            while self.outstanding > 0:
                try:
                    self._take(self.results.get(timeout=1.0))
                except Empty:
                    break
            self._flush_if_pending()
            # The final counts, for /metrics.
            queue.heartbeat(self.worker_id, config=self.config, state=self.published.snapshot(self))
            released = queue.stop_worker(self.worker_id)
            if released:
                logger.info("delivery: %d claimed rows returned to the queue", released)
            for campaign_id in sorted(self.touched):
                if finish_if_done(campaign_id):
                    self.stats.finished.append(campaign_id)
        finally:
            self.thread.stop()


class DeliveryThread(threading.Thread):
    """The engine inside ``tidings worker``: runs until ``stop()``, starting the engine again if
    it fails (a lost database, a bug), and stops cleanly: messages on the wire finish, the rows
    not yet sent go back to the queue."""

    def __init__(self) -> None:
        super().__init__(name="tidings-delivery", daemon=True)
        self.stopping = threading.Event()
        self.engine: Engine | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.engine = Engine(stop=self.stopping, resilient=True)
                    self.engine.run()
                except Exception:
                    logger.exception("delivery engine stopped on an error; starting again in 5 s")
                    close_old_connections()
                    self.stopping.wait(5.0)
        finally:
            connection.close()

    def stop(self, timeout: float = 150.0, *, hurry: threading.Event | None = None) -> None:
        """Stop cleanly, waiting up to ``timeout`` seconds; once ``hurry`` is set (a second
        signal), stop waiting and hand every row the engine holds back to the queue now."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        while self.is_alive() and time.monotonic() < deadline:
            if hurry is not None and hurry.is_set():
                self.abandon()
                return
            self.join(0.1)

    def abandon(self) -> None:
        """Stop now: the rows the engine claimed go back to the queue (another worker, or this
        one started again, sends them) without waiting for the messages on the wire; one of
        those may then be sent twice, never lost."""
        engine = self.engine
        if engine is None or not self.is_alive():
            return
        released = queue.stop_worker(engine.worker_id)
        logger.warning("delivery: stopped at once; %d claimed rows returned to the queue", released)
        connection.close()


def deliver_pending(max_seconds: float = 30.0, **options: Any) -> EngineStats:
    """Run the delivery engine in this thread until nothing is left to send now (or
    ``max_seconds`` have passed); returns its ``EngineStats``.

    What ``tidings worker`` does continuously, done once: for scripts, the demo, and tests that
    need the mail their actions queued.  Rows waiting for a later retry are left waiting.
    """
    engine = Engine(**options)
    return engine.run(until_idle=True, max_seconds=max_seconds)
