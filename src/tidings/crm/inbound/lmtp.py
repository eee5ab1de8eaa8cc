"""``tidings inbound serve``: a local LMTP server (RFC 2033) your own mail server delivers to.

A pipe alias starts ``tidings inbound process`` once per message, and each such process builds
screening's engine (spaCy and presidio: seconds of CPU, hundreds of MB): fifty support mails at
once were fifty heavy processes on a small server.  This is one long-running process that
builds the engine once, at start, and hands every message to the same actions the pipes call:
``processing.do_receive_inbound`` for the support address (and its plus-addresses, the
conversations' reply addresses), ``campaigns.bounces.processing.do_record_inbound_mail`` for
the bounce address (and its VERP plus-addresses) and the List-Unsubscribe mailto address.

The protocol is aiosmtpd's ``LMTP``; what is ours is the answer to each recipient after DATA:

- 250 for anything that is mail, processed or kept unprocessed for an operator (the pipes'
  exit 0): nothing waits in the mail server's queue;
- 550 for what is not mail at all (the pipes' non-zero exit), 550 for any other recipient
  (at RCPT), 552 for a message over ``TIDINGS_INBOUND_MAX_BYTES`` (announced with SIZE);
- 451 when it could not even be stored (the database is down, the disk full): the mail server
  keeps it and tries again, so nothing is lost.  Only such faults: a message on which reading
  fails at every try (a parser's bug on that message) is kept whole for an operator, who
  downloads it (``processing.UNREADABLE``), and answered 250; answered 451 it was retried for
  days, a row at each try, then bounced to its sender.

Messages are processed one at a time, in one thread beside the event loop, which goes on
receiving other connections' messages meanwhile (each waits for its answer, in order, while
the mail server keeps it queued).  One at a time because the actions are synchronous Django
code on one database connection, SQLite has one writer anyway, the engine is shared, and a
small server should not screen several mails at once (bounding that load is why this exists);
a message takes a fraction of a second once the engine is built.

Logs say counts, sizes and outcomes, never addresses, subjects or what a message says (and
aiosmtpd's own log, which prints the envelope, is kept at WARNING in settings.LOGGING).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from aiosmtpd.lmtp import LMTP
from django.conf import settings
from django.db import close_old_connections, connections

from tidings.policy.screening import load_engine

from .. import conversations
from . import processing

logger = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:2424"
SOURCE = "lmtp"
SUPPORT = "support"
BOUNCES = "bounces"


class ListenError(Exception):
    """The server cannot start (a bad ``--listen``, the port taken, nothing to receive)."""


# --- where it listens ------------------------------------------------------------------------
@dataclass(frozen=True)
class Listen:
    host: str = ""
    port: int = 0
    path: str = ""  # a unix socket instead of host and port

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_listen(value: str) -> Listen:
    """``HOST:PORT`` (``[::1]:2424`` for IPv6) or ``unix:/path/to/socket``."""
    value = value.strip()
    if value.startswith("unix:"):
        path = value.removeprefix("unix:")
        if not path.startswith("/"):
            raise ListenError(f"--listen {value}: the socket's path must be absolute")
        return Listen(path=path)
    host, colon, port = value.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenError(f"--listen {value}: give HOST:PORT (127.0.0.1:2424) or unix:/path")
    return Listen(host=host, port=int(port))


# --- where its acknowledgements link to ------------------------------------------------------
def require_base_url() -> None:
    """Refuse to serve when ``TIDINGS_BASE_URL`` is not set in the environment.

    The acknowledgement of each support mail links to tidings (the conversation, the privacy
    notice).  `tidings serve` links to where it serves when the setting is not there, but this
    server knows no such address: run on its own (systemd, a shell) it linked every customer to
    ``http://127.0.0.1:8000``, an address on the server's own machine."""
    if not os.environ.get("TIDINGS_BASE_URL", "").strip():
        raise ListenError(
            "TIDINGS_BASE_URL is not set: acknowledgements of support mail would link to "
            f"{settings.TIDINGS_BASE_URL}; set it to the address people reach tidings at "
            "(as for tidings serve)"
        )


# --- whom it takes mail for ------------------------------------------------------------------
@dataclass(frozen=True)
class Recipients:
    """The addresses this server takes mail for, each with its plus-addresses."""

    support: str = ""
    bounces: tuple[str, ...] = ()

    @classmethod
    def configured(cls) -> Recipients:
        bounces = (
            parseaddr(str(getattr(settings, name, "") or ""))[1]
            for name in ("TIDINGS_BOUNCE_ADDRESS", "TIDINGS_UNSUBSCRIBE_MAILTO")
        )
        return cls(
            support=parseaddr(conversations.support_address())[1].lower(),
            bounces=tuple(a.lower() for a in bounces if "@" in a),
        )

    def __bool__(self) -> bool:
        return bool(self.support or self.bounces)

    def kind(self, address: str) -> str | None:
        """SUPPORT, BOUNCES or None (not ours).  The support address first: were it also the
        bounce address, its processing passes delivery reports on to the bounces itself."""
        if _same_mailbox(address, self.support):
            return SUPPORT
        if any(_same_mailbox(address, bounces) for bounces in self.bounces):
            return BOUNCES
        return None


def _same_mailbox(address: str, ours: str) -> bool:
    """``support+e12.sig@Example.co.uk`` is ``support@example.co.uk``'s (case aside)."""
    local, at, domain = address.strip().lower().rpartition("@")
    our_local, our_at, our_domain = ours.rpartition("@")
    if not at or not our_at or domain != our_domain:
        return False
    return local == our_local or local.startswith(our_local + "+")


# --- what happens to a message ---------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    line: str  # "250 2.0.0 ...", one per recipient
    outcome: str  # for the log and the counts: no personal data


TRY_AGAIN = Reply("451 4.3.0 could not be stored now: try again later", "deferred")
NOT_MAIL = Reply("550 5.6.0 not a mail message", "refused")


def deliver(raw: bytes, kind: str) -> Reply:
    """Hand one message to the pipe's action for ``kind``; the reply its recipients get.

    Synchronous Django code, in the processing thread.  Nothing that is in the message raises
    (the actions keep it with the reason, ``processing.UNREADABLE`` when reading it failed);
    what does raise is the database or the disk (``processing.TEMPORARY``), so the answer is
    "try again later" and the mail server keeps the message."""
    close_old_connections()  # a connection broken while the database was down: a new one
    try:
        if kind == SUPPORT:
            row = processing.do_receive_inbound(raw, source=SOURCE)
            if processing.is_not_mail(row):
                return NOT_MAIL
            return Reply(f"250 2.0.0 kept as inbound mail #{row.pk}", str(row.status))
        from tidings.campaigns.bounces import processing as bounces

        if bounces.not_mail(raw):
            return NOT_MAIL
        report = bounces.do_record_inbound_mail(raw, source=SOURCE)
        return Reply(f"250 2.0.0 kept as report #{report.pk}", f"report {report.status}")
    except Exception as exc:
        # Only the class: a database error's text can quote the values it was given.
        logger.warning("lmtp: a message could not be stored (%s): answered 451", type(exc).__name__)
        return TRY_AGAIN
    finally:
        close_old_connections()


# --- the protocol ----------------------------------------------------------------------------
class _Session(LMTP):
    """aiosmtpd's LMTP session, counted by its receiver, and with one reply per recipient when
    a message is refused while it arrives."""

    def __init__(self, receiver: Receiver, **kwargs: Any) -> None:
        super().__init__(receiver, **kwargs)
        self._receiver = receiver
        self._waiting_recipients = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._receiver.sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._receiver.sessions.discard(self)
        super().connection_lost(error)

    async def smtp_DATA(self, arg: str) -> None:
        self._waiting_recipients = len(self.envelope.rcpt_tos) if self.envelope else 0
        try:
            await super().smtp_DATA(arg)
        finally:
            self._waiting_recipients = 0

    async def push(self, status: Any) -> None:
        # aiosmtpd answers a message over the size limit (552) or with a line over 1,000
        # octets (500) once, as SMTP does; an LMTP client waits for one reply per recipient
        # (RFC 2033 4.2) and would hang on the rest.  Its own replies after DATA are ours.
        if (
            self._waiting_recipients > 1
            and isinstance(status, str)
            and status.startswith(("552 ", "500 "))
        ):
            status = "\r\n".join([status] * self._waiting_recipients)
        await super().push(status)


class Receiver(threading.Thread):
    """The LMTP server in a thread of its own: ``start()`` builds screening's engine, listens
    and returns (raising ListenError when it cannot); ``stop()`` stops taking connections,
    finishes every message received in full, then closes the connections and returns.

    ``tidings inbound serve`` runs one; ``tidings worker --lmtp`` runs one beside its work."""

    def __init__(self, listen: Listen, recipients: Recipients | None = None) -> None:
        super().__init__(name="lmtp", daemon=True)
        self.listen = listen
        self.recipients = recipients if recipients is not None else Recipients.configured()
        if not self.recipients:
            raise ListenError(
                "neither TIDINGS_SUPPORT_ADDRESS nor TIDINGS_BOUNCE_ADDRESS is set: no address "
                "to receive mail for"
            )
        self.max_bytes = processing.max_bytes()
        self.address = ""  # where it listens, once started
        self.counts: Counter[str] = Counter()
        self.sessions: set[_Session] = set()
        self._error: Exception | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = False
        self._in_hand = 0  # messages received in full and not answered yet
        self._idle: asyncio.Event | None = None
        # The synchronous actions, one message at a time (the module's docstring says why).
        self._processing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmtp-processing")
        self._hostname = socket.gethostname()  # aiosmtpd would look up the FQDN per session

    # --- the thread's life
    def start(self) -> None:
        super().start()
        self._ready.wait()
        if self._error is not None:
            self.join()
            raise self._error

    def stop(self, timeout: float | None = None) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop has just ended by itself
                loop.call_soon_threadsafe(stop.set)
        self.join(timeout)

    def run(self) -> None:
        try:
            asyncio.run(self._serve())
        except Exception as exc:  # reported to start(), or logged if it ends later
            if self._ready.is_set():
                logger.exception("lmtp: the server stopped")
            self._error = ListenError(f"lmtp: {type(exc).__name__}: {exc}")
        finally:
            self._ready.set()
            # The processing thread's database connection ends with it, not when collected.
            self._processing.submit(connections.close_all)
            self._processing.shutdown(wait=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        started = time.monotonic()
        await self._loop.run_in_executor(self._processing, load_engine)
        took = time.monotonic() - started
        try:
            server = await self._bind()
        except OSError as exc:
            self._error = ListenError(f"cannot listen on {self.listen}: {exc.strerror or exc}")
            self._ready.set()
            return
        logger.info(
            "lmtp: listening on %s (screening's engine built in %.1f s; messages up to %s bytes)",
            self.address,
            took,
            f"{self.max_bytes:,}",
        )
        self._ready.set()
        await self._stop.wait()
        # Stop taking connections, answer every message received in full, then hang up: a
        # message still arriving is not answered, so the mail server keeps it and retries.
        self._stopping = True
        server.close()
        await self._idle.wait()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.close()
        if hasattr(server, "close_clients"):  # Python 3.13: also those not greeted yet
            server.close_clients()
        await server.wait_closed()
        if self.listen.path:
            with contextlib.suppress(OSError):
                Path(self.listen.path).unlink()
        logger.info("lmtp: stopped: %s", _summary(self.counts))

    async def _bind(self) -> asyncio.Server:
        assert self._loop is not None

        def session() -> _Session:
            return _Session(
                self,
                data_size_limit=self.max_bytes,
                enable_SMTPUTF8=True,
                hostname=self._hostname,
                ident="tidings LMTP",
                loop=self._loop,
            )

        if self.listen.path:
            path = Path(self.listen.path)
            if path.exists() and stat.S_ISSOCK(path.stat().st_mode):
                path.unlink()  # left by a process that did not stop cleanly
            server = await self._loop.create_unix_server(session, str(path))
            # The mail server's user must reach it: the group (put it in tidings'), not others.
            os.chmod(path, 0o660)  # noqa: PTH101 - the socket's mode, right after it exists
            self.address = f"unix:{path}"
            return server
        server = await self._loop.create_server(session, self.listen.host, self.listen.port)
        host, port = server.sockets[0].getsockname()[:2]
        self.address = str(Listen(host=host, port=port))
        return server

    # --- aiosmtpd's handler hooks
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.recipients.kind(address) is None:
            self.counts["unknown recipient"] += 1
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or b"")
        kinds = [self.recipients.kind(a) or SUPPORT for a in envelope.rcpt_tos]
        if self._stopping:  # received after SIGTERM: the mail server keeps it for later
            self.counts["deferred"] += 1
            return "\r\n".join(["451 4.3.2 shutting down: try again later"] * len(kinds))
        assert self._loop is not None and self._idle is not None
        self._in_hand += 1
        self._idle.clear()
        try:
            # Each kind once: support@ and a reply address in one transaction is one mail.
            replies = {}
            for kind in dict.fromkeys(kinds):
                replies[kind] = await self._loop.run_in_executor(
                    self._processing, deliver, raw, kind
                )
        finally:
            self._in_hand -= 1
            if not self._in_hand:
                self._idle.set()
        for kind, reply in replies.items():
            self.counts[reply.outcome] += 1
            logger.info(
                "lmtp: a message of %s bytes for %d recipient(s) (%s): %s",
                f"{len(raw):,}",
                kinds.count(kind),
                kind,
                reply.line[:3] + " " + reply.outcome,
            )
        return "\r\n".join(replies[kind].line for kind in kinds)


def _summary(counts: Counter[str]) -> str:
    if not counts:
        return "no messages"
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
