"""What every transport is: the message it is given, the error it raises, its limits.

A transport is one way out for mail: an SMTP server (``smtp``), any Django email backend
(``django_backend``, so django-anymail's ESP backends work), or the embedded outbox (``outbox``).
Each module has the same shape: a ``Transport`` subclass built from a ``TransportConfig``.

Transports are used from the delivery engine's event loop: ``send`` is a coroutine, called by at
most ``concurrency`` senders at once, each with its own ``slot`` number (0 ≤ slot < concurrency), so
a transport may keep one connection per slot and never share one between two sends.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Error kinds: what happened, in words the engine acts on and operators can read.
USER_UNKNOWN = "user_unknown"  # 5xx saying the mailbox does not exist: a hard bounce
REJECTED = "rejected"  # any other permanent refusal
# A permanent refusal by the receiver's security or policy (RFC 3463 X.7.x: refused as spam or
# for its content, a blocklisted or unauthenticated sender, 5.7.26 DMARC): the message or the
# sender, not the address.  Never a hard bounce; the reputation pause counts these apart
# (``campaigns.protection``).  The same word as a policy block reported later (bounces.BLOCKED).
BLOCKED = "blocked"
# A permanent refusal of our envelope sender (RFC 3463 X.1.7 bad sender's mailbox, X.1.8 bad
# sender's system address: "Sender address rejected: Domain not found", Exim's "Sender verify
# failed"): our address or its domain is wrong, every recipient would get the same answer.  Never
# a hard bounce; counted apart for the reputation pause, whose reason says to fix the sender.
SENDER = "sender"
THROTTLED = "throttled"  # slow down: 421/451/454 "too many", SES's 454 Throttling
TEMPORARY = "temporary"  # any other 4xx
CONNECTION = "connection"  # could not connect, connection dropped, timed out
# The server refused our credentials, or refuses to send for us without them ("530 5.7.0
# Authentication required", "554 5.7.1 Relay access denied", Microsoft's 5.7.57 and 5.7.64): our
# SMTP set-up, not the message nor the recipient.  Nothing is spent: the rows wait and the
# campaign pauses with the reason (engine: like an unreachable server).
AUTH = "auth"
CONFIG = "config"  # the transport itself is misconfigured


class TransportError(Exception):
    """A message could not be handed over.  ``permanent``: do not try again (5xx); otherwise the
    engine retries later with back-off.  ``code`` is the SMTP reply code when there was one.

    ``attempted`` is False when nothing of the message left this machine (the server could not
    be reached at all): the engine then spends no attempt on it.

    The text must never contain personal data: servers often quote the recipient's address in
    their replies, so ``TransportError`` masks anything that looks like one.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: int | None = None,
        kind: str = TEMPORARY,
        attempted: bool = True,
        at_recipient: bool = False,
    ) -> None:
        self.text = scrub(message)
        super().__init__(self.text)
        self.permanent = permanent
        self.code = code
        self.kind = kind
        self.attempted = attempted
        # The reply refused this recipient (RCPT, or the message after it), not the connection
        # or our sender: a throttling reply is then its domain's (queue.deferrals).
        self.at_recipient = at_recipient

    def describe(self) -> str:
        """One line for the Delivery row's ``error`` (≤ 300 characters, no personal data)."""
        code = f"{self.code} " if self.code else ""
        return f"{self.kind}: {code}{self.text}"[:300]


_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


# A full mailbox, by its enhanced code (X.2.2) or its usual words.
_MAILBOX_FULL = re.compile(
    r"\b5\.2\.2\b|mailbox (is )?full|over ?quota|quota exceeded|out of storage|"
    r"insufficient (system )?storage",
    re.IGNORECASE,
)


# A refusal for the message or its sender, in the words of servers that give no enhanced code
# ("554 Message rejected as spam", "554 Rejected content", "554 ... blocked using
# zen.spamhaus.org").
_POLICY_WORDS = re.compile(
    r"spam|block ?list|black ?list|blocked using|reputation|"
    r"\b(dmarc|dkim|spf)\b|(rejected|refused|prohibited|unacceptable) content|"
    r"content (rejected|refused)",
    re.IGNORECASE,
)
# A refusal of our envelope sender, in the words of Postfix ("Sender address rejected: Domain
# not found", "... need fully-qualified address"), Exim ("Sender verify failed", "after MAIL
# FROM"), Sendmail ("Domain of sender address ... does not exist"), Microsoft 365 ("5.7.60 Client
# does not have permissions to send as this sender", "5.1.8 Access denied, bad outbound sender")
# and others; or its code, X.1.7 / X.1.8.  "Sender unknown to our reputation service" is a
# policy block, not this.
_SENDER_WORDS = re.compile(
    r"\b[45]\.1\.[78]\b|sender address rejected|sender verif(y|ication) (failed|rejected)|"
    r"verification failed for|domain of sender address|"
    r"sender('s)? domain (not found|does not exist|doesn't exist|unknown|must (resolve|exist))|"
    r"sender (must exist|denied|domain must)|need fully[- ]qualified address|"
    r"rejected your return address|bad outbound sender|"
    r"(not|n't) have permissions? to send as",
    re.IGNORECASE,
)
# Our SMTP server refusing to send for us: we did not log in (or not as an account allowed to
# send), or it does not relay for us.  RFC 4954's 530 is "authentication required".
_SETUP_WORDS = re.compile(
    r"relay(ing)? (access )?(denied|not permitted|prohibited|not allowed)|unable to relay|"
    r"(we do not|not allowed to|not permitted to|does not) relay|list of allowed rcpthosts|"
    r"authentication (is )?required|must (authenticate|log ?in)|not authenticated|"
    r"must issue a starttls|\b5\.7\.(57|64)\b",
    re.IGNORECASE,
)
# An enhanced status code that says something (X.0.0 is "other or undefined").
_ENHANCED = re.compile(r"\b[245]\.(?!0\.0\b)\d{1,3}\.\d{1,3}\b")


def names_our_sender(text: str) -> bool:
    """Whether a refusal's ``text`` refuses our envelope sender (X.1.7, X.1.8, or words)."""
    return _SENDER_WORDS.search(text) is not None


def names_our_setup(text: str) -> bool:
    """Whether a refusal's ``text`` says the server will not send for us at all (relaying
    denied, authentication required)."""
    return _SETUP_WORDS.search(text) is not None


def names_a_policy(text: str) -> bool:
    """Whether a refusal's ``text``, which gives no telling enhanced code, says it refused
    the message or our reputation (spam, a blocklist, DMARC...)."""
    return _ENHANCED.search(text) is None and _POLICY_WORDS.search(text) is not None


def scrub(text: str) -> str:
    """``text`` on one line, with email addresses replaced by ``<address>``."""
    return " ".join(_ADDRESS.sub("<address>", str(text)).split())[:250]


def classify_smtp_reply(
    code: int, message: str, *, sender: bool = False, at_recipient: bool = False
) -> TransportError:
    """The TransportError for an SMTP error reply.  ``sender``: the reply refused our envelope
    sender (MAIL FROM), which says nothing about the recipient's mailbox: never a hard bounce,
    whatever its words ("Sender address rejected: User unknown").  Postfix checks the sender
    when the recipient is given (smtpd_delay_reject, its default), so such a refusal can also
    come as the reply to RCPT: recognised by its words or its enhanced code (RFC 3463 X.1.7
    bad sender's mailbox, X.1.8 bad sender's system address).

    Permanent refusals, most specific first: our SMTP set-up (``AUTH``: authentication
    required, relaying denied), our envelope sender (``SENDER``), a full mailbox (tried again),
    a policy block (``BLOCKED``), an unknown mailbox (``USER_UNKNOWN``), anything else."""
    lowered = message.lower()
    named_sender = _SENDER_WORDS.search(message) is not None
    sender = sender or named_sender
    if 500 <= code < 600 and (code == 530 or _SETUP_WORDS.search(message)):
        # Not this message's fault nor the recipient's: nothing left this machine that the
        # server took, so no attempt is spent; the rows wait and the campaign pauses.
        return TransportError(message, permanent=False, code=code, kind=AUTH, attempted=False)
    if 500 <= code < 600 and _MAILBOX_FULL.search(message) and not sender:
        # 552 5.2.2 "mailbox full": RFC 3463 calls it persistent, but the mailbox takes mail
        # again once emptied (Gmail answers it so): tried again later, never a hard bounce.
        return TransportError(message, permanent=False, code=code, kind=TEMPORARY)
    if 500 <= code < 600:
        # RFC 3463 X.1.1 "bad destination mailbox address", X.1.10 null MX; and the usual words
        # servers that send no enhanced code use.  A policy block (X.7.x "security or policy
        # status": "5.7.1 message refused as spam", "sender unknown to our reputation service",
        # 5.7.23 SPF, 5.7.26 DMARC; or, without an enhanced code, words saying so) is not about
        # the address: BLOCKED.
        policy = re.search(r"\b5\.7\.\d{1,3}\b", message) is not None or (
            _ENHANCED.search(message) is None and _POLICY_WORDS.search(message) is not None
        )
        unknown = not sender and (
            re.search(r"\b5\.1\.(1|10)\b", message) is not None
            or (
                not policy
                and code in (550, 551, 553)
                and ("unknown" in lowered or "no such" in lowered)
            )
            or (not policy and "does not exist" in lowered)
        )
        # A refused MAIL FROM is our sender's unless it says the message is too big or is
        # refused for its content or our reputation (a blocklisted server, at MAIL FROM).
        ours = named_sender or (
            sender and not policy and not re.search(r"\b5\.3\.4\b|size", lowered)
        )
        kind = USER_UNKNOWN if unknown else SENDER if ours else BLOCKED if policy else REJECTED
        return TransportError(message, permanent=True, code=code, kind=kind)
    throttled = code in (421, 454) or "throttl" in lowered or "rate" in lowered
    return TransportError(
        message or "temporary failure",
        permanent=False,
        code=code,
        kind=THROTTLED if throttled else TEMPORARY,
        at_recipient=at_recipient and not sender,
    )


@dataclass(slots=True)
class Email:
    """One message to one recipient, as the engine hands it to a transport.

    ``data`` is the whole RFC 5322 message (CRLF line ends, DKIM-signed when a key is
    configured): what SMTP and the outbox send.  Transports that build their own MIME (Django
    backends) use the parts instead; ``data`` is then None.
    """

    mail_from: str  # the envelope sender (where bounces go)
    recipient: str
    message_id: str
    from_header: str
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    data: bytes | None = None
    smtputf8: bool = False
    # Builds ``data`` again with 7-bit encodings only, for a server without 8BITMIME.
    rebuild: Callable[[], bytes] | None = None
    # Text files: ({"filename", "content_type", "content"}, ...); a calendar invitation.
    attachments: tuple[dict[str, str], ...] = ()
    # The queue row it is sent for, set by the engine: (kind "d" or "o", the row's id, the
    # contact it was claimed for, or None: a message to a non-contact such as an operator).
    claim: tuple[str, int, int | None] | None = None


@dataclass(frozen=True)
class TransportConfig:
    name: str
    kind: str  # smtp | django_backend | outbox
    url: str = ""
    backend: str = ""
    mailer: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 10
    # (messages, seconds) pairs: at most that many in any such period (see RateLimiter).
    limits: tuple[tuple[int, float], ...] = ()
    timeout: float = 30.0

    def describe(self) -> str:
        """Where it sends, without credentials: for logs and pause reasons."""
        if self.kind == "smtp":
            from urllib.parse import urlsplit

            parts = urlsplit(self.url)
            return f"{self.name} (SMTP {parts.hostname}:{parts.port or ''})".replace(":)", ")")
        if self.kind == "django_backend":
            return f"{self.name} ({self.mailer or self.backend})"
        return f"{self.name} (outbox)"


class RateLimiter:
    """Token buckets, one per limit: ``limits`` are (messages, seconds) pairs such as
    (50, 1) and (100_000, 3600).

    Each bucket refills at messages/seconds per second and holds at most a small burst: a tenth
    of a second's worth for a per-second limit, one second's worth for a per-minute limit, one
    minute's worth for longer periods; so over any period the count stays within the limit plus
    that burst (+10% of a second's worth; +1.7% of an hourly limit), and a worker that starts
    with full buckets does not send a second's worth at once.
    ``share`` scales every limit: with several workers each takes its part (1/number of live
    workers), so the limits hold for the installation, not for each worker.
    """

    def __init__(self, limits: tuple[tuple[int, float], ...] = ()) -> None:
        self.limits = limits
        self.share = 1.0
        now = time.monotonic()
        self._buckets = [[self._capacity(count, period), now] for count, period in limits]

    @staticmethod
    def _rate(count: int, period: float) -> float:
        return count / period

    def _capacity(self, count: int, period: float) -> float:
        burst = 0.1 if period <= 1 else 1.0 if period <= 60 else 60.0
        return max(1.0, self._rate(count, period) * self.share * burst)

    def delay(self) -> float:
        """Seconds to wait before the next message may go (0: now), taking its token if so."""
        if not self.limits:
            return 0.0
        now = time.monotonic()
        wait = 0.0
        for bucket, (count, period) in zip(self._buckets, self.limits, strict=True):
            rate = self._rate(count, period) * self.share
            capacity = self._capacity(count, period)
            tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
            bucket[0], bucket[1] = tokens, now
            if tokens < 1.0:
                wait = max(wait, (1.0 - tokens) / rate)
        if wait == 0.0:
            for bucket in self._buckets:
                bucket[0] -= 1.0
        return wait

    async def acquire(self) -> None:
        while (wait := self.delay()) > 0:
            await asyncio.sleep(wait)


class Transport:
    """The interface.  Subclasses set ``wants_bytes`` and implement ``send``."""

    wants_bytes = True

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.name = config.name
        self.concurrency = max(1, config.concurrency)
        self.limiter = RateLimiter(config.limits)

    async def send(self, email: Email, slot: int) -> str:
        """Hand the message over; returns the provider's id for it ("" if none).  Raises
        TransportError."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close connections (the engine is stopping)."""

    def commit(self) -> None:
        """Called by the engine in its database thread, inside the transaction that records
        sent messages, before they are marked: a transport whose "sending" is a database write
        (the outbox) does it here, so the message and its mark commit together."""

    def describe(self) -> str:
        return self.config.describe()
