"""``tidings bounces fetch``: read the bounce mailbox (IMAP or POP3) and process what is there.

``TIDINGS_BOUNCE_MAILBOX_URL`` says where: ``imaps://user:password@host[:port]/INBOX``,
``imap://…`` (STARTTLS is used when the server offers it), ``pop3s://user:password@host[:port]``
or ``pop3://…``.  The mailbox should be one that only receives bounces and complaints: every
message in it is read (mail that is not a report is kept as an unprocessed report too) and then
removed.  A message is deleted only after its report is stored, so a crash between the two
processes it again at the next fetch (a hard bounce or complaint twice changes nothing; a soft
bounce may be counted twice).
"""

from __future__ import annotations

import contextlib
import imaplib
import poplib
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_LIMIT = 500  # messages per fetch; the rest wait for the next one


class MailboxError(Exception):
    """The mailbox cannot be read (bad URL, unreachable, refused login).  No credentials in it."""


@dataclass(frozen=True)
class MailboxConfig:
    protocol: str  # imap | pop3
    tls: bool
    host: str
    port: int
    user: str
    password: str
    folder: str = "INBOX"

    def describe(self) -> str:
        return f"{self.protocol}{'s' if self.tls else ''}://{self.host}:{self.port}"


_PORTS = {("imap", True): 993, ("imap", False): 143, ("pop3", True): 995, ("pop3", False): 110}


def parse_url(url: str) -> MailboxConfig:
    """The mailbox of ``url``; raises MailboxError saying what is wrong (without the password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise MailboxError("TIDINGS_BOUNCE_MAILBOX_URL: not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in {"imap", "imaps", "pop3", "pop3s"}:
        raise MailboxError(
            "TIDINGS_BOUNCE_MAILBOX_URL: expected imaps://, imap://, pop3s:// or pop3:// "
            f"(got {scheme or 'no scheme'}://)"
        )
    if not parts.hostname or not parts.username:
        raise MailboxError("TIDINGS_BOUNCE_MAILBOX_URL: give user:password@host")
    protocol, tls = scheme.rstrip("s"), scheme.endswith("s")
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxConfig(
        protocol=protocol,
        tls=tls,
        host=parts.hostname,
        port=port or _PORTS[(protocol, tls)],
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=folder,
    )


def fetch(
    config: MailboxConfig,
    store: Callable[[bytes, str], object],
    *,
    limit: int = DEFAULT_LIMIT,
    timeout: float = 60.0,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Read up to ``limit`` messages, hand each to ``store(raw, source)`` and delete it once
    ``store`` has returned.  Returns how many were stored."""
    reader = _imap if config.protocol == "imap" else _pop3
    count = 0
    try:
        for raw, delete in reader(config, limit, timeout, ssl_context):
            store(raw, config.protocol)
            delete()
            count += 1
    except (OSError, imaplib.IMAP4.error, poplib.error_proto, ssl.SSLError) as exc:
        raise MailboxError(f"{config.describe()}: {_reason(exc)}") from None
    return count


def _reason(exc: Exception) -> str:
    text = str(exc)
    return (text or type(exc).__name__).replace("\n", " ")[:200]


def _imap(config, limit, timeout, ssl_context) -> Iterator[tuple[bytes, Callable[[], None]]]:
    client: imaplib.IMAP4
    if config.tls:
        client = imaplib.IMAP4_SSL(
            config.host, config.port, ssl_context=ssl_context, timeout=timeout
        )
    else:
        client = imaplib.IMAP4(config.host, config.port, timeout=timeout)
        if "STARTTLS" in client.capabilities:
            client.starttls(ssl_context)
    try:
        client.login(config.user, config.password)
        status, _ = client.select(_quoted(config.folder))
        if status != "OK":
            raise imaplib.IMAP4.error(f"cannot open folder {config.folder}")
        status, data = client.uid("SEARCH", "UNDELETED")
        uids = (data[0] or b"").split()[:limit] if status == "OK" else []
        for uid in uids:
            status, parts = client.uid("FETCH", uid, "(BODY.PEEK[])")  # type: ignore[arg-type]  # imaplib sends bytes as they are
            raw = next(
                (p[1] for p in parts if isinstance(p, tuple) and isinstance(p[1], bytes)), None
            )
            if status != "OK" or raw is None:
                continue

            def delete(uid=uid) -> None:
                client.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")

            yield raw, delete
        client.expunge()
        client.close()
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pop3(config, limit, timeout, ssl_context) -> Iterator[tuple[bytes, Callable[[], None]]]:
    client: poplib.POP3
    if config.tls:
        client = poplib.POP3_SSL(config.host, config.port, timeout=timeout, context=ssl_context)
    else:
        client = poplib.POP3(config.host, config.port, timeout=timeout)
        try:
            if "STLS" in client.capa():
                client.stls(ssl_context)
        except poplib.error_proto:
            pass  # no CAPA: an old server; carry on in plain text as configured
    try:
        client.user(config.user)
        client.pass_(config.password)
        count, _ = client.stat()
        for number in range(1, min(count, limit) + 1):
            _, lines, _ = client.retr(number)

            def delete(number=number) -> None:
                client.dele(number)

            yield b"\r\n".join(lines) + b"\r\n", delete
        client.quit()  # deletions take effect here
    except BaseException:
        client.close()  # no QUIT: the server keeps every message (RFC 1939 "UPDATE" not reached)
        raise


@dataclass(frozen=True)
class FetchResult:
    fetched: int
    processed: int

    @property
    def unprocessed(self) -> int:
        return self.fetched - self.processed


def fetch_configured(*, limit: int = DEFAULT_LIMIT) -> FetchResult:
    """Fetch from ``TIDINGS_BOUNCE_MAILBOX_URL``; raises MailboxError when it is not set or
    cannot be read."""
    from django.conf import settings

    from ..models import InboundReport
    from .processing import do_record_inbound_mail

    url = str(getattr(settings, "TIDINGS_BOUNCE_MAILBOX_URL", "") or "")
    if not url:
        raise MailboxError("TIDINGS_BOUNCE_MAILBOX_URL is not set: no bounce mailbox to read")
    processed = 0

    def store(raw: bytes, source: str) -> None:
        nonlocal processed
        report = do_record_inbound_mail(raw, source=source)
        processed += report.status == InboundReport.Status.PROCESSED

    fetched = fetch(parse_url(url), store, limit=limit)
    return FetchResult(fetched, processed)
