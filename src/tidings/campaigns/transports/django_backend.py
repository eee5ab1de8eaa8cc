"""Any Django email backend as a transport: django-anymail's ESP backends, Django's SMTP or
console backends, or a MAILERS alias.

Configured with ``mailer = "<MAILERS alias>"`` or ``backend = "<dotted path>"`` plus ``options``
(the backend's keyword arguments).  Backends are synchronous, so each send runs in a thread of
the transport's own pool (``concurrency`` threads), each thread with its own backend instance and
connection.  The backend builds the MIME itself from the message's parts (ESPs want parts, not
bytes); DKIM is then the provider's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import smtplib
import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.mail import EmailMultiAlternatives, mailers
from django.utils.module_loading import import_string

from .base import (
    AUTH,
    CONNECTION,
    REJECTED,
    SENDER,
    TEMPORARY,
    THROTTLED,
    Email,
    Transport,
    TransportConfig,
    TransportError,
    classify_smtp_reply,
)


class DjangoBackendTransport(Transport):
    wants_bytes = False

    def __init__(self, config: TransportConfig) -> None:
        super().__init__(config)
        self._pool = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"tidings-{self.name}"
        )
        self._local = threading.local()

    def _backend(self):
        backend = getattr(self._local, "backend", None)
        if backend is None:
            if self.config.mailer:
                backend = mailers[self.config.mailer]
            else:
                backend = import_string(self.config.backend)(**self.config.options)
            backend.open()
            self._local.backend = backend
        return backend

    def _send_sync(self, email: Email) -> str:
        message = EmailMultiAlternatives(
            subject=email.subject,
            body=email.text,
            from_email=email.from_header,
            to=[email.recipient],
            headers={"Message-ID": email.message_id, **email.headers},
        )
        if email.html:
            message.attach_alternative(email.html, "text/html")
        for attachment in email.attachments:
            message.attach(
                attachment["filename"], attachment["content"], attachment["content_type"]
            )
        backend = self._backend()
        try:
            sent = backend.send_messages([message])
        except Exception as exc:
            self._local.backend = None
            with contextlib.suppress(Exception):  # closing a broken backend may fail too
                backend.close()
            raise _translate(exc) from None
        if not sent:
            raise TransportError("the backend did not send the message", permanent=False)
        # django-anymail reports the provider's id on the message.
        status = getattr(message, "anymail_status", None)
        return str(getattr(status, "message_id", "") or "")[:200]

    async def send(self, email: Email, slot: int) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._send_sync, email)

    async def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _translate(exc: Exception) -> TransportError:
    """The TransportError for whatever a Django backend raised."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        code, message = next(iter(exc.recipients.values()))
        return classify_smtp_reply(code, _text(message))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return TransportError(_text(exc.smtp_error), permanent=False, code=exc.smtp_code, kind=AUTH)
    if isinstance(exc, smtplib.SMTPResponseException):
        sender = isinstance(exc, smtplib.SMTPSenderRefused)
        return classify_smtp_reply(exc.smtp_code, _text(exc.smtp_error), sender=sender)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, OSError, TimeoutError)):
        return TransportError(str(exc) or "connection failed", permanent=False, kind=CONNECTION)
    # django-anymail: recipients the ESP refused are permanent; API errors carry the HTTP status.
    name = type(exc).__name__
    if name == "AnymailRecipientsRefused":
        return TransportError("recipient refused by the provider", permanent=True, kind=REJECTED)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        if status == 429:
            return TransportError(f"{name}: HTTP 429", permanent=False, kind=THROTTLED)
        if 400 <= status < 500 and status not in (401, 403, 408):
            if _UNVERIFIED_SENDER.search(str(exc)):
                # SES "Email address is not verified", Postmark "not a Sender Signature",
                # Brevo/Mailgun "sender/domain not verified": our set-up, the same for every
                # message, never this recipient's fault: counted apart for the pause as a
                # refused sender, nobody suppressed.  The ESP's words are not kept (they
                # name addresses): TransportError keeps what it is given, so say it here.
                return TransportError(
                    f"{name}: HTTP {status}: the provider has not verified our sender address "
                    "or domain",
                    permanent=True,
                    kind=SENDER,
                )
            return TransportError(f"{name}: HTTP {status}", permanent=True, kind=REJECTED)
        kind = AUTH if status in (401, 403) else TEMPORARY
        return TransportError(f"{name}: HTTP {status}", permanent=False, kind=kind)
    return TransportError(f"{name}: {exc}", permanent=False, kind=TEMPORARY)


# An ESP's API refusing the message because of who sends it (its own sender verification).
_UNVERIFIED_SENDER = re.compile(
    r"(?:address|domain|sender|identit(?:y|ies))\b[^\n]{0,80}?\bnot\s+(?:been\s+)?verified"
    r"|\bunverified\s+(?:sender|domain|from)"
    r"|not\s+a\s+(?:valid\s+|confirmed\s+)?sender\s+signature"
    r"|verified\s+sender\s+identity",
    re.IGNORECASE,
)


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
