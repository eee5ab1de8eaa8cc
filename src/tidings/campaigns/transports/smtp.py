"""SMTP: a pool of persistent connections to one server (aiosmtplib), STARTTLS/TLS and AUTH.

URL forms (the same as ``TIDINGS_SMTP_URL``)::

    smtp://user:password@host:587          STARTTLS (the default on 587; ?tls=starttls elsewhere)
    smtp://host:25?tls=none                plain (a local relay)
    smtps://user:password@host:465         TLS from the first byte

Each sender slot keeps its own connection open between messages; a connection that has been idle
for a while is checked with NOOP before it is used, and one that fails is closed and opened again
for the next message.  The message is only recorded as sent after the server's 250 to the end of
DATA; anything else raises ``TransportError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol
from aiosmtplib.response import SMTPResponse

from .base import (
    AUTH,
    CONFIG,
    CONNECTION,
    REJECTED,
    Email,
    Transport,
    TransportConfig,
    TransportError,
    classify_smtp_reply,
)

logger = logging.getLogger(__name__)

# Pipelining reads the replies a server sent in one write through aiosmtplib's own buffer
# parser (``_pipelined`` says why); an aiosmtplib without it gets MAIL, RCPT and DATA one by one.
_CAN_PIPELINE = callable(getattr(SMTPProtocol, "_read_response_from_buffer", None))

# A connection unused for longer than this is probed with NOOP first: servers drop idle clients
# (Postfix after 300 s), and a stale connection must not cost a message an attempt.
IDLE_CHECK_SECONDS = 20.0

# What aiosmtplib refuses in a command's arguments (its COMMAND_INJECTION_REGEX).
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def parse_smtp_url(url: str) -> dict:
    """aiosmtplib.SMTP keyword arguments for an smtp:// or smtps:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("expected smtp://[user:pass@]host[:port] or smtps://...")
    query = parse_qs(parts.query)
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (465 if implicit_tls else 587)
    tls_mode = query.get("tls", ["starttls" if port == 587 else "none"])[0]
    if tls_mode not in {"starttls", "none"}:
        raise ValueError("tls= must be starttls or none")
    options: dict = {
        "hostname": parts.hostname,
        "port": port,
        "use_tls": implicit_tls,
        "start_tls": (not implicit_tls and tls_mode == "starttls"),
    }
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password or "")
    if query.get("verify", ["yes"])[0] in {"no", "0", "false"}:
        options["validate_certs"] = False
    if query.get("local_hostname"):
        options["local_hostname"] = query["local_hostname"][0]
    return options


class SMTPTransport(Transport):
    wants_bytes = True

    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        try:
            self.options = parse_smtp_url(config.url)
        except ValueError as exc:
            raise TransportError(
                f"transport {config.name}: {exc}", permanent=True, kind=CONFIG
            ) from None
        password = config.options.get("password_file")
        if password:
            with open(password, encoding="utf-8") as fp:  # noqa: PTH123
                self.options["password"] = fp.read().strip()
        self._clients: list[aiosmtplib.SMTP | None] = [None] * self.concurrency
        self._last_used = [0.0] * self.concurrency
        self._tls_context: ssl.SSLContext | None = None

    async def _connect(self, slot: int) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(timeout=self.config.timeout, **self.options)
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise TransportError(
                f"authentication refused: {exc.message}",
                permanent=False,
                code=exc.code,
                kind=AUTH,
                attempted=False,
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            error = classify_smtp_reply(exc.code, exc.message)
            # A server that answers the greeting with an error is refusing us, not the message.
            raise TransportError(
                f"connection refused by server: {error.text}",
                permanent=False,
                code=exc.code,
                kind=CONNECTION,
                attempted=False,
            ) from None
        except (OSError, aiosmtplib.SMTPException, TimeoutError) as exc:
            client.close()
            raise TransportError(
                f"cannot connect: {_reason(exc)}",
                permanent=False,
                kind=CONNECTION,
                attempted=False,
            ) from None
        if client.is_ehlo_or_helo_needed:
            try:
                await client.ehlo()
            except aiosmtplib.SMTPHeloError:
                await client.helo()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                client.close()
                raise TransportError(
                    f"the server broke off after connecting: {_reason(exc)}",
                    permanent=False,
                    kind=CONNECTION,
                    attempted=False,
                ) from None
        self._clients[slot] = client
        return client

    async def _client(self, slot: int) -> aiosmtplib.SMTP:
        client = self._clients[slot]
        if client is not None and not client.is_connected:
            client = self._clients[slot] = None
        if client is not None and time.monotonic() - self._last_used[slot] > IDLE_CHECK_SECONDS:
            try:
                await client.noop()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                self._drop(slot)
                client = None
        if client is None:
            client = await self._connect(slot)
        return client

    def _drop(self, slot: int) -> None:
        client = self._clients[slot]
        self._clients[slot] = None
        if client is not None:
            client.close()

    async def send(self, email: Email, slot: int) -> str:
        client = await self._client(slot)
        assert email.data is not None
        if email.smtputf8 and not client.supports_extension("smtputf8"):
            # A non-ASCII local part (jörg@…) can travel only with SMTPUTF8 (RFC 6531).  Asked
            # for all the same, servers refuse the MAIL command in words of their own ("501
            # SMTPUTF8 disabled", "555 Unsupported option"), which read as a refusal of our
            # envelope sender, a fault of the whole campaign.  It is this recipient's alone:
            # the row fails saying so, nobody is suppressed, the others go on; "retry failed"
            # sends it once the transport goes through a server that offers SMTPUTF8.
            raise TransportError(
                "the SMTP server does not offer SMTPUTF8, which this recipient's address "
                "(not ASCII before the @) needs; send through a server that does",
                permanent=True,
                kind=REJECTED,
            )
        encoding = "utf-8" if email.smtputf8 else "ascii"
        options = [b"SMTPUTF8"] if email.smtputf8 else []
        if not email.data.isascii():
            if client.supports_extension("8bitmime"):
                options.append(b"BODY=8BITMIME")
            elif email.rebuild is not None and not email.smtputf8:
                email.data = email.rebuild()
        if client.supports_extension("size"):
            options.append(b"SIZE=%d" % len(email.data))
        mail_from = email.mail_from.encode(encoding)
        recipient = email.recipient.encode(encoding)
        try:
            if _CONTROL.search(mail_from) or _CONTROL.search(recipient):
                raise ValueError("an address contains a control character")
            protocol = client.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost")
            mail = b" ".join((b"MAIL FROM:<" + mail_from + b">", *options))
            if _CAN_PIPELINE and client.supports_extension("pipelining"):
                await self._pipelined(protocol, mail, recipient, email.data)
                return ""
            # MAIL, RCPT and DATA one by one, written to aiosmtplib's protocol and its reply
            # read, rather than through sendmail(), which parses both addresses twice and scans
            # the message once more to size it, or execute_command(), which adds a lock (a
            # slot's connection has one sender), a control-character scan of each argument
            # (done above, once) and two more coroutines a command.  The addresses were
            # validated when they were stored.
            reply = await self._command(protocol, mail)
            if reply.code != 250:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, "")
            reply = await self._command(protocol, b"RCPT TO:<" + recipient + b">")
            if reply.code not in (250, 251):
                raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, "")
            await self._data(protocol, email.data)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or not client.is_connected:
                self._drop(slot)  # 421: the server is closing the connection
            else:
                await self._reset(slot)
            sender = isinstance(exc, aiosmtplib.SMTPSenderRefused)
            refused_recipient = isinstance(exc, aiosmtplib.SMTPRecipientRefused)
            raise classify_smtp_reply(
                exc.code, exc.message, sender=sender, at_recipient=refused_recipient
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError) as exc:
            self._drop(slot)
            raise TransportError(
                f"connection lost: {_reason(exc)}", permanent=False, kind=CONNECTION
            ) from None
        finally:
            self._last_used[slot] = time.monotonic()
        return ""

    async def _command(self, protocol: SMTPProtocol, line: bytes) -> SMTPResponse:
        """One command and its reply.  The reply is awaited right after the write, with no
        await between them, so it cannot arrive before aiosmtplib's protocol expects it."""
        protocol.write(line + b"\r\n")
        return await protocol.read_response(timeout=self.config.timeout)

    async def _pipelined(
        self, protocol: SMTPProtocol, mail: bytes, recipient: bytes, data: bytes
    ) -> None:
        """MAIL, RCPT and DATA in one write, then their three replies, then the message (RFC
        2920 PIPELINING, when the server offers it): two round trips a message instead of four,
        and two wake-ups of each side instead of four.  Every reply is read before any is
        acted on, so the connection stays in step; a refused MAIL or RCPT makes the server
        refuse DATA (503), and if it took DATA all the same, an empty message is ended with
        the lone dot RFC 2920 asks for."""
        protocol.write(mail + b"\r\nRCPT TO:<" + recipient + b">\r\nDATA\r\n")
        timeout = self.config.timeout
        replies = [await protocol.read_response(timeout=timeout)]
        while len(replies) < 3:
            # aiosmtplib's protocol parses one reply per read and keeps the rest of what
            # arrived in its buffer: the next reply may be there already (it usually is: the
            # server answers a pipelined group in one write).  Read it from there, else wait.
            # Nothing is awaited between the reads, so nothing can arrive unbuffered.
            if replies[-1].code == 421:  # the server is closing the connection: no more
                if len(replies) == 2:  # ... in its reply to RCPT: the recipient's domain
                    raise aiosmtplib.SMTPRecipientRefused(421, replies[-1].message, "")
                raise aiosmtplib.SMTPResponseException(421, replies[-1].message)
            reply = protocol._read_response_from_buffer()
            replies.append(reply or await protocol.read_response(timeout=timeout))
        mail_reply, rcpt_reply, data_reply = replies
        if mail_reply.code != 250 or rcpt_reply.code not in (250, 251):
            if data_reply.code == 354:
                await self._command(protocol, b".")
            if mail_reply.code != 250:
                raise aiosmtplib.SMTPSenderRefused(mail_reply.code, mail_reply.message, "")
            raise aiosmtplib.SMTPRecipientRefused(rcpt_reply.code, rcpt_reply.message, "")
        if data_reply.code != 354:
            raise aiosmtplib.SMTPDataError(data_reply.code, data_reply.message)
        await self._content(protocol, data)

    async def _data(self, protocol: SMTPProtocol, data: bytes) -> None:
        """DATA and the message.  aiosmtplib's data() rewrites every line ending and dot-stuffs
        with regular expressions over the whole message (a third of the CPU time of a send);
        our messages have CRLF line ends already (MessageFactory builds them so), so only lines
        starting with a dot need doubling, which bytes.replace finds at memchr speed."""
        reply = await self._command(protocol, b"DATA")
        if reply.code != 354:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        await self._content(protocol, data)

    async def _content(self, protocol: SMTPProtocol, data: bytes) -> None:
        """The message after the server's 354, and its reply."""
        if b"\r\n." in data:
            data = data.replace(b"\r\n.", b"\r\n..")
        # One write (one send() when the socket takes it all): the message and the final dot.
        protocol.write(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
        reply = await protocol.read_response(timeout=self.config.timeout)
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)

    async def _reset(self, slot: int) -> None:
        """RSET after a refusal, so the connection can carry the next message."""
        client = self._clients[slot]
        try:
            if client is not None:
                await client.rset()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            self._drop(slot)

    async def close(self) -> None:
        for slot, client in enumerate(self._clients):
            if client is not None and client.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await asyncio.wait_for(client.quit(), timeout=2)
            self._drop(slot)


def _reason(exc: BaseException) -> str:
    """What went wrong with a connection, in a few words."""
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "errno 111" in text:
        return "connection refused"
    if any(isinstance(e, TimeoutError) for e in chain) or "timed out" in text:
        return "timed out"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    if "certificate" in text or "ssl" in text:
        return f"TLS failed ({type(chain[-1]).__name__})"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset"
    return str(exc) or type(exc).__name__
