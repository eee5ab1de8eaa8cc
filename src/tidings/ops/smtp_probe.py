"""Talk to an SMTP server the way the delivery engine will, and say how far it got.

Connect (TLS from the first byte for ``smtps://``), EHLO, STARTTLS when the URL asks for it,
EHLO again, AUTH when the URL has a user name, QUIT.  No message is sent.  Each step is reported
separately, so "the password is wrong" and "port 587 is blocked" read differently.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import aiosmtplib


@dataclass
class ProbeResult:
    ok: bool
    steps: list[str] = field(default_factory=list)  # what worked, in order
    failed_step: str = ""  # connect | ehlo | starttls | auth
    error: str = ""
    extensions: list[str] = field(default_factory=list)
    auth_methods: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def probe(options: dict, timeout: float = 10.0) -> ProbeResult:
    """``options``: ``transports.smtp.parse_smtp_url`` output (plus ``password``)."""
    return asyncio.run(_probe(dict(options), timeout))


async def _probe(options: dict, timeout: float) -> ProbeResult:
    result = ProbeResult(ok=False)
    username = options.pop("username", None)
    password = options.pop("password", "")
    start_tls = options.pop("start_tls", False)
    client = aiosmtplib.SMTP(timeout=timeout, start_tls=False, **options)
    step = "connect"
    try:
        await client.connect()
        result.steps.append("connected" + (" (TLS)" if options.get("use_tls") else ""))
        step = "ehlo"
        await client.ehlo()
        result.steps.append("EHLO")
        result.extensions = sorted(client.esmtp_extensions)
        if start_tls:
            step = "starttls"
            if not client.supports_extension("starttls"):
                raise aiosmtplib.SMTPException("the server does not offer STARTTLS")
            await client.starttls()
            await client.ehlo()
            result.steps.append("STARTTLS")
            result.extensions = sorted(client.esmtp_extensions)
        result.auth_methods = sorted(client.supported_auth_methods)
        if username:
            step = "auth"
            if not (start_tls or options.get("use_tls")):
                result.warnings.append("the password is sent without TLS")
            await client.login(username, password)
            result.steps.append("AUTH " + ("/".join(result.auth_methods) or "?"))
        result.ok = True
    except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
        result.failed_step = step
        result.error = _describe(exc)
    finally:
        if client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
    return result


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}".strip()[:200]
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError | TimeoutError):
        return "timed out"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
