"""The delivery engine: a database thread and an event loop, and the queue between them.

The thread that calls ``Engine.run`` is the database thread: it claims rows (``delivery``),
loads the contacts and checks, in one query per batch, that each may still be emailed (consent to
the campaign's topic, not suppressed), hands the rows to the event loop, collects what happened
and records it in small batches.  It is the only thread that touches the database, so the engine
also runs inside a test's transaction.

The event loop runs in a second thread.  For each transport it runs ``concurrency`` senders; a
sender takes the next job (one-off messages first), waits for the transport's rate limit, renders
the message for its contact (the campaign's template is compiled once), builds its bytes and sends
it.  Rendering happens there, between network waits, rather than in the database thread: both are
Python code under one GIL, and small slices of work keep the connections busy.

Everything the database thread holds is bounded by the in-flight window (see ``delivery``), so a
worker's memory does not grow with the size of a campaign.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.urls import reverse

from tidings.audience.tokens import (
    absolute_url,
    make_preferences_token,
    make_unsubscribe_token,
    unsubscribe_mailto_address,
)

from . import delivery
from .delivery import Claimed, Result
from .messages import (
    MessageFactory,
    domain_of,
    message_id_for,
    to_header,
    verp_address,
    wire_address,
)
from .rendering import MessageLinks, TemplateProblem
from .transports.base import (
    AUTH,
    CONNECTION,
    THROTTLED,
    Email,
    Transport,
    TransportConfig,
    TransportError,
)
from .transports.config import build_transport, transport_configs
from .worker_state import WorkerState

logger = logging.getLogger(__name__)

TEMPLATE = "template"  # a result's kind when the campaign's template failed to render
FLUSH_SIZE = 50  # results written per batch at most (and as soon as there are that many)


def _setting(name: str, default: Any) -> Any:
    value = getattr(settings, name, None)
    return default if value in (None, "") else value


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


# --- what the event loop needs to build a campaign's messages --------------------------------
class CampaignContext:
    """One sending campaign, prepared in the database thread (template compiled, constant headers
    encoded, DKIM key loaded), then used read-only by the event loop."""

    def __init__(self, campaign) -> None:
        from email.utils import formataddr

        from .dkim import signer_for
        from .mail import _from_address
        from .rendering import CompiledMessage

        self.id = campaign.pk
        self.topic = campaign.topic
        self.route = campaign.transport
        self.compiled = CompiledMessage.for_campaign(campaign)
        sender = campaign.sender
        self.from_header = formataddr((sender.name, sender.email)) if sender else _from_address()
        self.domain = domain_of(self.from_header)
        self.mail_from = str(
            _setting("TIDINGS_BOUNCE_ADDRESS", "") or self.from_header.rpartition("<")[2].strip(">")
        )
        # VERP (TIDINGS_BOUNCE_VERP, with TIDINGS_BOUNCE_ADDRESS): one envelope sender per row.
        self.verp = bool(_setting("TIDINGS_BOUNCE_VERP", False)) and bool(
            _setting("TIDINGS_BOUNCE_ADDRESS", "")
        )
        reply_to = campaign.reply_to or (sender.reply_to if sender else "")
        lists = list(campaign.lists.filter(closed_at__isnull=True))
        # One list: its own unsubscribe link.  Several, or a segment: one click leaves them all.
        self.unsubscribe_list = lists[0] if len(lists) == 1 else None
        if self.unsubscribe_list is not None:
            list_name, list_key = self.unsubscribe_list.name, f"list-{self.unsubscribe_list.pk}"
        else:
            list_name, list_key = campaign.topic, "topic-" + _slug(campaign.topic)
        self.headers = {
            "Reply-To": reply_to,
            "List-Id": f"{list_name} <{list_key}.{self.domain}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # Gmail's Feedback-ID: campaign : topic : type : sender.
            "Feedback-ID": f"{campaign.pk}:{_slug(campaign.topic)}:campaign:tidings",
        }
        self.factory = MessageFactory(
            from_header=self.from_header, headers=self.headers, signer=signer_for(self.from_header)
        )
        # The links' addresses up to the token, resolved once: reverse() costs ~30 µs a call.
        self.mailto = unsubscribe_mailto_address()
        self.unsubscribe_prefix = absolute_url(reverse("public:unsubscribe", args=["T"]))[:-1]
        self.preferences_prefix = absolute_url(reverse("public:preferences", args=["T"]))[:-1]
        self.list_pk = self.unsubscribe_list.pk if self.unsubscribe_list is not None else None
        # "View in your browser": the public archive page, for campaigns shown there.
        self.view_url = (
            absolute_url(reverse("archive:campaign", args=[campaign.pk]))
            if campaign.archive
            else ""
        )
        self._compile_consent_query()
        # Open/click tracking, when the policy tracks: the link table is stored once here; each
        # message of a person who allows it gets its pixel and rewritten links (tracking.py).
        from tidings.audience.consent import tracking_enabled

        from .tracking import LinkTracker

        self.tracker = (
            LinkTracker.for_campaign(campaign, self.compiled.html_source)
            if tracking_enabled()
            else None
        )

    def _compile_consent_query(self) -> None:
        """The SQL of "these contacts, if they still consent to the campaign's topic", made
        once: compiling the ORM query (the targeting rule, ``targeting.consent_condition``) costs
        more than running it.  The ids travel as one parameter (an array; JSON on SQLite)."""
        from django.db.models.expressions import RawSQL

        from tidings.audience.models import Contact

        from .targeting import consent_condition

        if connection.vendor == "postgresql":
            ids_sql = "SELECT unnest(%s::bigint[])"
        else:
            ids_sql = "SELECT value FROM json_each(%s)"
        marker = "tidings:contact-ids"
        query = Contact.objects.filter(consent_condition(self.topic)).filter(
            pk__in=RawSQL(ids_sql, [marker])  # noqa: S611 - constant SQL, the ids a parameter
        )
        self.consent_sql, params = query.query.sql_with_params()
        self.consent_params = list(params)
        self.ids_at = self.consent_params.index(marker)

    def consenting(self, contact_ids: list[int]):
        """The Contacts among ``contact_ids`` who may be emailed about the campaign's topic."""
        from tidings.audience.models import Contact

        params = list(self.consent_params)
        params[self.ids_at] = (
            contact_ids if connection.vendor == "postgresql" else json.dumps(contact_ids)
        )
        return Contact.objects.raw(self.consent_sql, params)

    def links_for(self, contact, delivery_id: int) -> tuple[MessageLinks, str]:
        """The contact's links and List-Unsubscribe header: what ``audience.tokens``'
        ``unsubscribe_url``, ``preferences_url`` and ``list_unsubscribe_headers`` make (a test
        holds them equal), at a third of the cost."""
        token = make_unsubscribe_token(contact.pk, self.list_pk, delivery_id)
        unsubscribe_url = self.unsubscribe_prefix + token
        header = (
            f"<{unsubscribe_url}>, <mailto:{self.mailto}?subject={quote('unsubscribe ' + token)}>"
        )
        links = MessageLinks(
            unsubscribe_url=unsubscribe_url,
            preferences_url=self.preferences_prefix + make_preferences_token(contact.pk),
            view_url=self.view_url,
        )
        return links, header

    def email_for(self, job: Job, wants_bytes: bool) -> Email:
        contact = job.contact
        links, unsubscribe_header = self.links_for(contact, job.row.id)
        rendered = self.compiled.render(contact, links)
        html = rendered.html
        if job.track and self.tracker is not None:
            html = self.tracker.apply(html, job.row.id)
        recipient, smtputf8 = wire_address(contact.email)
        message_id = message_id_for("d", job.row.id, self.domain)
        email = Email(
            mail_from=(
                verp_address(self.mail_from, "d", job.row.id) if self.verp else self.mail_from
            ),
            recipient=recipient,
            message_id=message_id,
            from_header=self.from_header,
            subject=rendered.subject,
            text=rendered.text,
            html=html,
            headers={**self.headers, "List-Unsubscribe": unsubscribe_header},
            smtputf8=smtputf8,
        )
        if wants_bytes:
            build = functools.partial(
                self.factory.build,
                to=to_header(contact.name, recipient),
                subject=rendered.subject,
                text=rendered.text,
                html=html,
                message_id=message_id,
                headers={"List-Unsubscribe": unsubscribe_header},
            )
            email.data = build(eight_bit=True)
            email.rebuild = build
        return email


class OneOffFactories:
    """Message factories for one-off messages, one per (From, kind)."""

    def __init__(self) -> None:
        from .dkim import signer_for

        self._signer_for = signer_for
        self._factories: dict[tuple[str, str], MessageFactory] = {}
        self.mail_from = str(_setting("TIDINGS_BOUNCE_ADDRESS", ""))
        self.verp = bool(self.mail_from) and bool(_setting("TIDINGS_BOUNCE_VERP", False))

    def prepare(self, from_email: str, kind: str) -> MessageFactory:
        """Called in the database thread (it may read a DKIM key file)."""
        key = (from_email, kind)
        if key not in self._factories:
            self._factories[key] = MessageFactory(
                from_header=from_email,
                headers={
                    "Auto-Submitted": "auto-generated",
                    "Feedback-ID": f"{_slug(kind)}:system:tidings",
                },
                signer=self._signer_for(from_email),
            )
        return self._factories[key]

    def email_for(self, job: Job, wants_bytes: bool) -> Email:
        message = job.message
        assert message is not None and job.factory is not None
        recipient, smtputf8 = wire_address(job.contact.email)
        factory = job.factory
        message_id = message_id_for("o", job.row.id, factory.domain)
        headers = {str(k): str(v) for k, v in (message.headers or {}).items()}
        email = Email(
            mail_from=(
                verp_address(self.mail_from, "o", job.row.id)
                if self.verp
                else self.mail_from or message.from_email.rpartition("<")[2].strip(">")
            ),
            recipient=recipient,
            message_id=message_id,
            from_header=message.from_email,
            subject=message.subject,
            text=message.text,
            html=message.html,
            headers=headers,
            smtputf8=smtputf8,
            attachments=tuple(message.attachments or ()),
        )
        if wants_bytes:
            build = functools.partial(
                factory.build,
                to=to_header(job.contact.name, recipient),
                subject=message.subject,
                text=message.text,
                html=message.html,
                message_id=message_id,
                headers=headers,
                attachments=email.attachments,
            )
            email.data = build(eight_bit=True)
            email.rebuild = build
        return email


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "none"


@dataclass(slots=True)
class Job:
    row: Claimed
    contact: Any
    route: str
    campaign: CampaignContext | None = None
    message: Any = None  # OutgoingMessage (one-off)
    factory: MessageFactory | None = None  # one-off
    track: bool = False  # add the open pixel and rewrite links (the person allows tracking)


# --- the event loop side ---------------------------------------------------------------------
class Dispatcher:
    """Lives in the event loop: holds the jobs handed over, runs the senders."""

    def __init__(
        self, transports: list[Transport], results: queue.SimpleQueue, one_off: OneOffFactories
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

    def start(self) -> None:
        for transport in self.transports:
            backoff = _Backoff()
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

    async def _sender(self, transport: Transport, slot: int, backoff: _Backoff) -> None:
        while True:
            job = self._next(transport)
            if job is None:
                if self.closing:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
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
            self.results.put(await self._send(transport, slot, job, backoff))

    async def _send(self, transport: Transport, slot: int, job: Job, backoff: _Backoff) -> Result:
        row = job.row
        try:
            if job.campaign is not None:
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
            if exc.kind == THROTTLED:
                backoff.failed()
            return Result(
                row,
                "failed" if exc.permanent else "retry",
                transport.name,
                error=exc.describe(),
                code=exc.code,
                kind=exc.kind,
            )
        except Exception as exc:  # a transport bug must not kill the sender
            logger.exception("transport %s failed unexpectedly", transport.name)
            return Result(row, "retry", transport.name, error=f"error: {type(exc).__name__}")
        backoff.succeeded()
        return Result(row, "sent", transport.name, provider_id=provider_id)

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


class _Backoff:
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

    def call(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def soon(self, function, *args) -> None:
        self.loop.call_soon_threadsafe(function, *args)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(timeout=10)


# --- the circuit breaker ---------------------------------------------------------------------
class Breaker:
    """Per campaign: the last ``window`` attempts, and what went wrong with each that failed."""

    def __init__(self) -> None:
        self.window = int(_setting("TIDINGS_BREAKER_WINDOW", 100))
        self.minimum = int(_setting("TIDINGS_BREAKER_MIN", 20))
        self.threshold = float(_setting("TIDINGS_BREAKER_THRESHOLD", 0.5))
        self.outcomes: dict[int, collections.deque[str | None]] = {}

    def record(self, campaign_id: int, error: str | None) -> None:
        """One attempt: ``error`` None if it went through."""
        outcomes = self.outcomes.setdefault(campaign_id, collections.deque(maxlen=self.window))
        outcomes.append(error)

    def tripped(self, campaign_id: int) -> str | None:
        """The pause reason if the campaign's error rate is over the threshold, else None."""
        outcomes = self.outcomes.get(campaign_id)
        if not outcomes or len(outcomes) < self.minimum:
            return None
        errors = [error for error in outcomes if error is not None]
        if len(errors) / len(outcomes) <= self.threshold:
            return None
        common = collections.Counter(errors).most_common(1)[0][0]
        return (
            f"Paused automatically: {len(errors)} of the last {len(outcomes)} messages failed "
            f"({common})"
        )

    def reset(self, campaign_id: int) -> None:
        self.outcomes.pop(campaign_id, None)


# --- the database thread ---------------------------------------------------------------------
class Engine:
    """Runs the queue in the calling thread (see the module docstring).

    ``window``: rows held at once (claimed and not yet recorded); ``chunk``: rows per claim;
    ``flush_ms``: how long results may wait before they are written.  Defaults from
    ``TIDINGS_DELIVERY_WINDOW`` (200), ``TIDINGS_DELIVERY_CHUNK`` (100) and
    ``TIDINGS_DELIVERY_FLUSH_MS`` (50).
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
    ) -> None:
        self.window = int(window or _setting("TIDINGS_DELIVERY_WINDOW", 200))
        self.chunk = min(self.window, int(chunk or _setting("TIDINGS_DELIVERY_CHUNK", 100)))
        self.flush_seconds = float(flush_ms or _setting("TIDINGS_DELIVERY_FLUSH_MS", 50)) / 1000
        self.configs = list(transports) if transports is not None else transport_configs()
        self.stop = stop or threading.Event()
        self.resilient = resilient
        self.stats = EngineStats()
        self.results: queue.SimpleQueue[Result] = queue.SimpleQueue()
        self.pending: list[Result] = []
        self.pending_since = 0.0
        self.outstanding = 0
        self.outstanding_by_campaign: collections.Counter[int] = collections.Counter()
        self.contexts: dict[int, CampaignContext] = {}
        self.breaker = Breaker()
        self.published = WorkerState()  # numbers for /metrics, on the heartbeat row
        self.unreachable: dict[int, tuple[float, str]] = {}  # campaign → (since when, why)
        self.template_failed: dict[int, str] = {}
        self.touched: set[int] = set()
        self.finish_checked: dict[int, float] = {}
        self.cursors: dict[int, tuple[int, float]] = {}  # campaign → (last id, since when)
        self.turn = 0
        self.worker_id = ""

    # -- the loop --
    def run(self, *, until_idle: bool = False, max_seconds: float | None = None) -> EngineStats:
        started = time.monotonic()
        deadline = started + max_seconds if max_seconds else None
        lease = delivery.lease_seconds()
        heartbeat_every = max(0.5, lease / 6)
        self.transports = [build_transport(config) for config in self.configs]
        self.worker_id = delivery.register_worker().pk
        delivery.recover_abandoned(self.worker_id)
        delivery.purge_history()
        self.next_purge = time.monotonic() + 3600
        self.transport_names = {t.name for t in self.transports}
        self.one_off = OneOffFactories()
        self.thread = EventLoopThread()
        self.thread.start()
        self.thread.ready.wait()
        self.dispatcher = Dispatcher(self.transports, self.results, self.one_off)
        self.thread.call(self._start_dispatcher())
        self._set_share()
        logger.info(
            "delivery worker %s started: %s; window %d rows",
            self.worker_id,
            ", ".join(f"{t.describe()} ×{t.concurrency}" for t in self.transports),
            self.window,
        )
        next_heartbeat = time.monotonic() + heartbeat_every
        next_refresh = 0.0
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
                    if now >= next_refresh:
                        self._refresh_campaigns()
                        next_refresh = now + 0.5
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
        return 0.0 if until_idle else float(_setting("TIDINGS_DELIVERY_IDLE_SECONDS", 0.5))

    def _collect(self, timeout: float) -> None:
        """Take results from the event loop, waiting up to ``timeout`` for the first."""
        try:
            result = self.results.get(timeout=timeout) if timeout > 0 else self.results.get_nowait()
        except queue.Empty:
            return
        while True:
            self._take(result)
            try:
                result = self.results.get_nowait()
            except queue.Empty:
                return

    def _take(self, result: Result) -> None:
        if not self.pending:
            self.pending_since = time.monotonic()
        self.pending.append(result)
        self.outstanding -= 1
        if result.row.campaign_id is not None:
            self.outstanding_by_campaign[result.row.campaign_id] -= 1

    def _flush(self) -> None:
        batch = self.pending
        with transaction.atomic():
            for transport in self.transports:
                transport.commit()
            changed = delivery.record_results(self.worker_id, batch)
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

    def _pause_unreachable(self) -> None:
        """A campaign whose messages could not be handed to any server for
        ``TIDINGS_UNREACHABLE_PAUSE_SECONDS`` (default 20) is paused, however few it tried."""
        limit = float(_setting("TIDINGS_UNREACHABLE_PAUSE_SECONDS", 20))
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
        return result.error

    def _pause(self, campaign_id: int, reason: str) -> None:
        self.breaker.reset(campaign_id)
        if delivery.pause_campaign(campaign_id, reason):
            self.stats.paused.append(campaign_id)
        self._forget_campaigns({campaign_id})

    def _forget_campaigns(self, ids: set[int]) -> None:
        for campaign_id in ids:
            self.contexts.pop(campaign_id, None)
            self.cursors.pop(campaign_id, None)
        self.thread.soon(self.dispatcher.drop, ids)

    def _heartbeat(self) -> None:
        if not delivery.heartbeat(self.worker_id, state=self.published.snapshot(self)):
            logger.error(
                "worker %s was declared gone by another worker; its rows were returned to the "
                "queue; registering again",
                self.worker_id,
            )
            self.worker_id = delivery.register_worker().pk
        delivery.recover_abandoned(self.worker_id)
        self._set_share()
        if time.monotonic() >= self.next_purge:
            delivery.purge_history()
            self.next_purge = time.monotonic() + 3600

    def _set_share(self) -> None:
        share = 1.0 / max(1, delivery.live_workers())
        self.thread.soon(self.dispatcher.set_share, share)

    def _refresh_campaigns(self) -> None:
        """Re-read which campaigns are sending: stop those that no longer are, prepare new ones,
        and finish the ones this worker has nothing left of."""
        from .models import Campaign
        from .rendering import TemplateProblem

        sending = set(delivery.sending_campaign_ids())
        gone = set(self.contexts) - sending
        if gone:
            self._forget_campaigns(gone)
        for campaign_id in sorted(sending - set(self.contexts)):
            campaign = (
                Campaign.objects.select_related("sender", "layout", "template")
                .filter(pk=campaign_id)
                .first()
            )
            if campaign is None:
                continue
            if campaign.transport and campaign.transport not in self.transport_names:
                self._pause(campaign_id, f"No transport is named {campaign.transport!r}")
                continue
            try:
                self.contexts[campaign_id] = CampaignContext(campaign)
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
        claimed = delivery.claim_outgoing(self.worker_id, min(room, self.chunk))
        if claimed:
            self._hand_over(self._one_off_jobs(claimed))
            return True
        ids = sorted(self.contexts)
        for offset in range(len(ids)):
            campaign_id = ids[(self.turn + offset) % len(ids)]
            limit = min(room, self.chunk)
            rows = delivery.claim_deliveries(
                self.worker_id, campaign_id, limit, after=self._cursor(campaign_id)
            )
            self._advance(campaign_id, rows[-1].id if len(rows) == limit else 0)
            if rows:
                self.turn = (self.turn + offset + 1) % len(ids)
                self.touched.add(campaign_id)
                self._hand_over(self._campaign_jobs(self.contexts[campaign_id], rows))
                return True
            if not self.outstanding_by_campaign[campaign_id] and self._finish_check_due(
                campaign_id
            ):
                self._flush_if_pending()
                if delivery.finish_if_done(campaign_id):
                    self.stats.finished.append(campaign_id)
                    self._forget_campaigns({campaign_id})
                    return False
        return False

    def _cursor(self, campaign_id: int) -> int:
        """Where the next claim of the campaign starts.  Claims walk the queue upwards from the
        last id claimed (see ``delivery.claim_deliveries``); at the end of the queue, and every
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

    def _skip(self, row: Claimed, reason: str) -> None:
        """A claimed row that will not be sent: it goes straight to the results."""
        self.results.put(Result(row, "skipped", error=reason))

    def _campaign_jobs(self, context: CampaignContext, rows: list[Claimed]) -> list[Job]:
        """Jobs for the rows whose contact may still be emailed; the others are skipped.

        One query loads the contacts that still consent to the campaign's topic (the targeting
        rule, ``targeting.consent_condition``); two more look their addresses and domains up in
        the suppression list (``audience.suppression``'s rules).  An unsubscribe therefore stops
        mail even to a campaign that is already sending.
        """
        from tidings.audience.emails import email_domain, email_hmac
        from tidings.audience.models import SuppressedDomain, Suppression
        from tidings.audience.suppression import domain_and_parents

        self._count_claimed(rows)
        ids = [row.contact_id for row in rows if row.contact_id]
        allowed = {contact.pk: contact for contact in context.consenting(ids)} if ids else {}
        hashes = {email_hmac(contact.email): pk for pk, contact in allowed.items()}
        suppressed = {
            hashes[h]
            for h in Suppression.objects.filter(email_hmac__in=list(hashes)).values_list(
                "email_hmac", flat=True
            )
        }
        domains = {pk: domain_and_parents(email_domain(c.email)) for pk, c in allowed.items()}
        blocked = set(
            SuppressedDomain.objects.filter(
                domain__in={d for parents in domains.values() for d in parents}
            ).values_list("domain", flat=True)
        )
        if blocked:
            suppressed |= {pk for pk, parents in domains.items() if blocked.intersection(parents)}
        tracked: set[int] = set()
        if context.tracker is not None and allowed:
            from tidings.audience.consent import tracked_contact_ids

            tracked = tracked_contact_ids(allowed)
        jobs = []
        for row in rows:
            contact = allowed.get(row.contact_id)
            if row.contact_id is None:
                self._skip(row, "the contact was erased")
            elif contact is None:
                self._skip(row, "no consent at send time (unsubscribed)")
            elif row.contact_id in suppressed:
                self._skip(row, "suppressed")
            else:
                jobs.append(
                    Job(
                        row,
                        contact,
                        context.route,
                        campaign=context,
                        track=row.contact_id in tracked,
                    )
                )
        return jobs

    def _one_off_jobs(self, rows: list[Claimed]) -> list[Job]:
        from tidings.audience.models import Contact

        from .models import OutgoingMessage

        self._count_claimed(rows)
        messages = OutgoingMessage.objects.in_bulk([row.id for row in rows])
        contacts = Contact.objects.in_bulk([row.contact_id for row in rows if row.contact_id])
        jobs = []
        for row in rows:
            message = messages[row.id]
            contact = contacts.get(row.contact_id)
            if contact is None:
                self._skip(row, "the contact was erased")
                continue
            route = message.transport if message.transport in self.transport_names else ""
            factory = self.one_off.prepare(message.from_email, message.kind)
            jobs.append(Job(row, contact, route, message=message, factory=factory))
        return jobs

    def _shutdown(self) -> None:
        """Stop cleanly: what is on the wire finishes, the rest goes back to the queue."""
        try:
            try:
                self.thread.call(self.dispatcher.close(), timeout=120)
            except Exception:
                logger.exception("delivery: stopping the senders failed")
            while self.outstanding > 0:
                try:
                    self._take(self.results.get(timeout=1.0))
                except queue.Empty:
                    break
            self._flush_if_pending()
            delivery.heartbeat(self.worker_id, state=self.published.snapshot(self))  # final counts
            released = delivery.stop_worker(self.worker_id)
            if released:
                logger.info("delivery: %d claimed rows returned to the queue", released)
            for campaign_id in sorted(self.touched):
                if delivery.finish_if_done(campaign_id):
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

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    Engine(stop=self.stopping, resilient=True).run()
                except Exception:
                    logger.exception("delivery engine stopped on an error; starting again in 5 s")
                    close_old_connections()
                    self.stopping.wait(5.0)
        finally:
            connection.close()

    def stop(self, timeout: float | None = 150.0) -> None:
        self.stopping.set()
        self.join(timeout)


# --- test messages ---------------------------------------------------------------------------
@dataclass
class DirectResult:
    sent: int = 0
    errors: list[str] = field(default_factory=list)  # TransportError.describe(): no addresses


def send_test_messages(
    campaign, addresses: list[str], rendered, *, subject_prefix: str = "[Test] "
) -> DirectResult:
    """Send ``rendered`` (a campaign's message, rendered with inert links) to ``addresses`` now,
    through the transport the campaign would use (``Campaign.transport``, else the first), built
    as the engine builds campaign mail: the same From, Reply-To, envelope sender, DKIM signature
    and MIME bytes; marked ``X-Tidings-Test``, with no List-Unsubscribe (its links are inert).

    Not queued: the operator waits for the answer, and nobody's delivery row is involved.
    """
    from email.utils import formataddr

    from .dkim import signer_for
    from .mail import _from_address

    configs = transport_configs()
    config = next((c for c in configs if campaign.transport and c.name == campaign.transport), None)
    transport = build_transport(config or configs[0])
    sender = campaign.sender
    from_header = formataddr((sender.name, sender.email)) if sender else _from_address()
    reply_to = campaign.reply_to or (sender.reply_to if sender else "")
    headers = {"Reply-To": reply_to, "X-Tidings-Test": "yes"}
    factory = MessageFactory(
        from_header=from_header, headers=headers, signer=signer_for(from_header)
    )
    mail_from = str(
        _setting("TIDINGS_BOUNCE_ADDRESS", "") or from_header.rpartition("<")[2].strip(">")
    )
    subject = f"{subject_prefix}{rendered.subject}"
    emails = []
    for address in addresses:
        recipient, smtputf8 = wire_address(address)
        message_id = f"<test.{uuid.uuid4().hex}@{factory.domain}>"
        email = Email(
            mail_from=mail_from,
            recipient=recipient,
            message_id=message_id,
            from_header=from_header,
            subject=subject,
            text=rendered.text,
            html=rendered.html,
            headers={k: v for k, v in headers.items() if v},
            smtputf8=smtputf8,
        )
        if transport.wants_bytes:
            build = functools.partial(
                factory.build,
                to=recipient,
                subject=subject,
                text=rendered.text,
                html=rendered.html,
                message_id=message_id,
            )
            email.data = build(eight_bit=True)
            email.rebuild = build
        emails.append(email)

    result = DirectResult()

    async def send_all() -> None:
        try:
            for email in emails:
                await transport.limiter.acquire()
                try:
                    await transport.send(email, 0)
                except TransportError as exc:
                    result.errors.append(exc.describe())
                else:
                    result.sent += 1
        finally:
            await transport.close()

    asyncio.run(send_all())
    transport.commit()  # the outbox writes what it "sent" here
    return result
