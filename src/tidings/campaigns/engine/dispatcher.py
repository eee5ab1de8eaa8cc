"""The event loop's side of the engine: the senders of each transport, and the thread it runs in.

For each transport the dispatcher runs ``concurrency`` senders; a sender takes the next job
(one-off messages first), waits for the transport's rate limit, builds the message for its contact
and sends it, and puts what happened on the results queue the database thread reads.  Nothing
here touches the database.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ..queue import Result
from ..queue.deferrals import deferral_text
from ..rendering import TemplateProblem
from ..transports.base import AUTH, CONNECTION, THROTTLED, Transport, TransportError
from .context import Job, OneOffFactories

logger = logging.getLogger("tidings.campaigns.engine")

TEMPLATE = "template"  # a result's kind when the campaign's template failed to render


class Dispatcher:
    """Lives in the event loop: holds the jobs handed over, runs the senders."""

    def __init__(
        self,
        transports: list[Transport],
        results: queue.SimpleQueue,
        one_off: OneOffFactories,
        domain_hold_seconds: float = 60.0,
    ) -> None:
        self.transports = transports
        self.results = results
        self.one_off = one_off
        self.priority: dict[str, collections.deque[Job]] = collections.defaultdict(
            collections.deque
        )
        self.bulk: dict[str, collections.deque[Job]] = collections.defaultdict(collections.deque)
        self.wakeup = asyncio.Event()
        self.stopped = asyncio.Event()
        self.closing = False
        self.tasks: list[asyncio.Task] = []
        # Receiving domains that asked us to slow down -> when they may be sent to again (the
        # database thread's copy of queue.deferrals, handed over with set_deferring).
        self.deferring: dict[str, Any] = {}
        # A recipient's refusal seen here holds its domain at once, until the database thread's
        # deferral (the shared one, with its back-off) arrives: results reach that thread in
        # batches, and under load all of a domain's queued messages were sent in the meantime.
        self.provisional: dict[str, datetime] = {}
        self.domain_hold = timedelta(seconds=domain_hold_seconds)
        # Campaign rows that may no longer go (the database thread's latest ``withdraw``), by
        # id -> why: checked once more as a sender is about to send.
        self.withdrawn: dict[int, str] = {}

    def start(self) -> None:
        for transport in self.transports:
            backoff = Backoff()
            for slot in range(transport.concurrency):
                self.tasks.append(asyncio.ensure_future(self._sender(transport, slot, backoff)))

    def submit(self, jobs: list[Job]) -> None:
        for job in jobs:
            (self.priority if job.row.kind == "o" else self.bulk)[job.route].append(job)
        self.wakeup.set()

    def drop(self, campaign_ids: set[int]) -> None:
        """Give back the jobs of campaigns that stopped sending (paused, cancelled)."""
        for jobs in self.bulk.values():
            keep = [j for j in jobs if j.row.campaign_id not in campaign_ids]
            for job in jobs:
                if job.row.campaign_id in campaign_ids:
                    self.results.put(Result(job.row, "released"))
            jobs.clear()
            jobs.extend(keep)

    def withdraw(self, reasons: dict[int, str]) -> None:
        """Campaign rows whose person may no longer be emailed (unsubscribed, erased,
        suppressed since the claim), by id -> why: those still waiting are skipped now, and a
        sender that already took one skips it instead of sending it."""
        self.withdrawn = reasons
        if not reasons:
            return
        for jobs in self.bulk.values():
            keep = []
            for job in jobs:
                if job.row.kind == "d" and job.row.id in reasons:
                    self.results.put(Result(job.row, "skipped", error=reasons[job.row.id]))
                else:
                    keep.append(job)
            jobs.clear()
            jobs.extend(keep)

    def set_deferring(self, deferring: dict[str, Any]) -> None:
        self.deferring = deferring
        now = timezone.now()
        # A shared deferral whose wait is running has arrived: it decides now.  An expired one
        # (its row stays until the domain accepts a message) is older than the hold: not yet.
        for domain in [d for d in self.provisional if d in deferring and deferring[d] > now]:
            del self.provisional[domain]

    def _held_until(self, domain: str) -> datetime | None:
        """When the domain may be sent to again: the later of the shared deferral and the
        provisional hold (either may be past)."""
        times = [t for t in (self.deferring.get(domain), self.provisional.get(domain)) if t]
        return max(times, default=None)

    def _hold_domain(self, domain: str) -> None:
        now = timezone.now()
        current = self._held_until(domain)
        if current is None or current <= now:  # an expired deferral does not hold it
            self.provisional[domain] = now + self.domain_hold

    def _deferred(self, job: Job) -> Result | None:
        """A job whose domain is deferring (noted after it was handed over): back to the queue
        until the domain's time, spending no attempt."""
        domain = job.row.domain
        retry_at = self._held_until(domain) if domain else None
        if retry_at is None:
            return None
        wait = (retry_at - timezone.now()).total_seconds()
        if wait <= 0:
            return None
        text = deferral_text(job.row.domain, retry_at)
        return Result(job.row, "released", error=text, delay=float(max(1, math.ceil(wait))))

    def set_share(self, share: float) -> None:
        for transport in self.transports:
            transport.limiter.share = share

    def _next(self, transport: Transport) -> Job | None:
        for jobs in (
            self.priority.get(transport.name),
            self.priority.get(""),
            self.bulk.get(transport.name),
            self.bulk.get(""),
        ):
            if jobs:
                return jobs.popleft()
        return None

    async def _sender(self, transport: Transport, slot: int, backoff: Backoff) -> None:
        while True:
            job = self._next(transport)
            if job is None:
                if self.closing:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            held = self._deferred(job)
            if held is not None:
                self.results.put(held)
                continue
            pause = backoff.pause()
            if pause:  # a stop does not wait for the end of a back-off
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopped.wait(), pause)
            if not self.closing:
                await transport.limiter.acquire()
            if self.closing:
                self.results.put(Result(job.row, "released"))
                continue
            reason = self.withdrawn.pop(job.row.id, None) if job.row.kind == "d" else None
            if reason is not None:  # withdrawn while this sender waited for its turn
                self.results.put(Result(job.row, "skipped", error=reason))
                continue
            self.results.put(await self._send(transport, slot, job, backoff))

    async def _send(self, transport: Transport, slot: int, job: Job, backoff: Backoff) -> Result:
        row = job.row
        if job.failure is not None:  # a builder process could not build it
            return job.failure
        try:
            if job.email is not None:  # built ahead by a builder process
                email = job.email
            elif job.campaign is not None:
                email = job.campaign.email_for(job, transport.wants_bytes)
            else:
                email = self.one_off.email_for(job, transport.wants_bytes)
        except TemplateProblem as exc:
            # The template itself fails (over its limits): no contact will fare better, so the
            # row goes back unspent and the campaign is paused with the reason.
            return Result(row, "released", transport.name, error=str(exc)[:250], kind=TEMPLATE)
        except Exception as exc:  # a failure for this contact alone: never retried
            logger.warning("%s %s could not be built: %s", row.kind, row.id, type(exc).__name__)
            # Only the kind of error: its text might quote the contact's data.
            return Result(row, "failed", transport.name, error=f"build: {type(exc).__name__}")
        email.claim = (row.kind, row.id, row.contact_id)
        try:
            provider_id = await transport.send(email, slot)
        except TransportError as exc:
            if exc.kind in (CONNECTION, AUTH) and getattr(exc, "attempted", True) is False:
                backoff.failed()
                # Nothing left this machine: no attempt is spent, the row waits a little.
                return Result(
                    row,
                    "released",
                    transport.name,
                    error=exc.describe(),
                    code=exc.code,
                    kind=exc.kind,
                    delay=backoff.pause() or 1.0,
                )
            if exc.kind == THROTTLED and not exc.at_recipient:
                # The server itself asks us to slow down: every message waits.  A refusal of
                # the recipient is its domain's (queue.deferrals): the others go on.
                backoff.failed()
            elif exc.kind == THROTTLED and row.domain:
                self._hold_domain(row.domain)
            return Result(
                row,
                "failed" if exc.permanent else "retry",
                transport.name,
                error=exc.describe(),
                code=exc.code,
                kind=exc.kind,
                at_recipient=exc.at_recipient,
            )
        except Exception as exc:  # a transport bug must not kill the sender
            logger.exception("transport %s failed unexpectedly", transport.name)
            return Result(row, "retry", transport.name, error=f"error: {type(exc).__name__}")
        backoff.succeeded()
        return Result(row, "sent", transport.name, provider_id=provider_id, tracked=job.track)

    async def close(self) -> None:
        """Stop taking jobs, let the ones on the wire finish, give back the rest."""
        self.closing = True
        self.stopped.set()
        self.wakeup.set()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        for jobs in (*self.priority.values(), *self.bulk.values()):
            while jobs:
                self.results.put(Result(jobs.popleft().row, "released"))
        for transport in self.transports:
            try:
                await transport.close()
            except Exception:
                logger.exception("closing transport %s failed", transport.name)


class Backoff:
    """Shared by a transport's senders: after connection failures or throttling, wait 0.5 s,
    1 s, 2 s … (at most 30 s) before the next message; any success resets it."""

    def __init__(self) -> None:
        self.failures = 0
        self.until = 0.0

    def failed(self) -> None:
        now = time.monotonic()
        if now < self.until:  # sent before the pause began: the same outage, not a new one
            return
        self.failures += 1
        self.until = now + min(30.0, 0.25 * 2**self.failures)

    def succeeded(self) -> None:
        self.failures = 0
        self.until = 0.0

    def pause(self) -> float:
        return max(0.0, self.until - time.monotonic())


class EventLoopThread(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="tidings-delivery-loop", daemon=True)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self.ready.set)
        self.loop.run_forever()
        self.loop.close()

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def soon(self, function: Callable[..., Any], *args: Any) -> None:
        self.loop.call_soon_threadsafe(function, *args)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(timeout=10)
