"""Which transports exist, from the settings.

Without ``TIDINGS_TRANSPORTS`` there is one transport, ``default``, made from
``TIDINGS_SMTP_URL`` (``outbox://``, ``smtp://...`` or ``smtps://...``) with the limits in
``TIDINGS_SMTP_RATE`` (e.g. ``"50/s"``, ``"20000/h"`` or both: ``"50/s, 20000/h"``) and
``TIDINGS_SMTP_CONCURRENCY`` connections (default 10).

``TIDINGS_TRANSPORTS`` names a TOML file (or is the same thing as a dict) with one table per
transport; the table's name is the transport's name::

    [main]                                   # an SMTP server
    url = "smtp://mailer@mail1.example.com:587"
    password_file = "/run/secrets/smtp1"     # optional: the password, kept out of this file
    concurrency = 10                         # connections (default 10)
    rate = "50/s, 100000/h"                  # optional limits: N/s, N/m, N/h, N/d

    [backup]
    url = "smtps://mailer:secret@mail2.example.com"
    concurrency = 4

    [ses]                                    # any Django email backend (django-anymail...)
    backend = "anymail.backends.amazon_ses.EmailBackend"
    options = { }                            # the backend's keyword arguments
    rate = "14/s"

    [django]                                 # a MAILERS alias
    mailer = "default"

Every transport takes messages from the same queue as fast as its connections and limits allow,
so a faster or less limited server carries more of the load, and a server that fails stops
taking messages while the others carry on.  A campaign (``Campaign.transport``) or the system
emails (``TIDINGS_SYSTEM_TRANSPORT``) may name one transport to use only that one.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import Transport, TransportConfig

_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(s|m|h|d)\s*$")


def parse_rate(text: str) -> tuple[tuple[int, float], ...]:
    """``"50/s, 20000/h"`` → ((50, 1.0), (20000, 3600.0)).  Blank: no limit."""
    limits = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _RATE.match(part)
        if not match or int(match.group(1)) < 1:
            raise ImproperlyConfigured(
                f"rate: expected limits like 50/s, 3000/m, 100000/h or 1000000/d, got {part!r}"
            )
        limits.append((int(match.group(1)), _PERIODS[match.group(2)]))
    return tuple(limits)


def _kind_for_url(url: str) -> str:
    scheme = url.partition("://")[0].lower()
    if scheme == "outbox":
        return "outbox"
    if scheme in {"smtp", "smtps"}:
        return "smtp"
    raise ImproperlyConfigured(
        f"transport url: expected outbox://, smtp:// or smtps://, got {url!r}"
    )


def _from_table(name: str, table: Mapping[str, Any]) -> TransportConfig:
    known = {
        "url",
        "password_file",
        "backend",
        "mailer",
        "options",
        "concurrency",
        "rate",
        "timeout",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise ImproperlyConfigured(f"transport {name}: unknown setting(s): {', '.join(unknown)}")
    ways = [key for key in ("url", "backend", "mailer") if table.get(key)]
    if len(ways) != 1:
        raise ImproperlyConfigured(f"transport {name}: give exactly one of url, backend or mailer")
    concurrency = table.get("concurrency", 10)
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 200:
        raise ImproperlyConfigured(f"transport {name}: concurrency must be a number from 1 to 200")
    options = dict(table.get("options") or {})
    if table.get("password_file"):
        options["password_file"] = str(table["password_file"])
    url = str(table.get("url") or "")
    return TransportConfig(
        name=name,
        kind=_kind_for_url(url) if url else "django_backend",
        url=url,
        backend=str(table.get("backend") or ""),
        mailer=str(table.get("mailer") or ""),
        options=options,
        concurrency=concurrency,
        limits=parse_rate(str(table.get("rate") or "")),
        timeout=float(table.get("timeout", 30)),
    )


def transport_configs() -> list[TransportConfig]:
    """The installation's transports, in the order they were given."""
    configured = getattr(settings, "TIDINGS_TRANSPORTS", None)
    if configured:
        if isinstance(configured, (str, Path)):
            path = Path(configured)
            try:
                tables = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ImproperlyConfigured(f"TIDINGS_TRANSPORTS: {path}: {exc}") from None
        else:
            tables = dict(configured)
        configs = []
        for name, table in tables.items():
            if not re.fullmatch(r"[a-z0-9_-]{1,50}", name) or not isinstance(table, Mapping):
                raise ImproperlyConfigured(
                    f"TIDINGS_TRANSPORTS: [{name}] must be a table named with a-z, 0-9, - or _"
                )
            configs.append(_from_table(name, table))
        if not configs:
            raise ImproperlyConfigured("TIDINGS_TRANSPORTS: no transport is defined")
        return configs
    url = getattr(settings, "TIDINGS_SMTP_URL", "outbox://") or "outbox://"
    return [
        TransportConfig(
            name="default",
            kind=_kind_for_url(url),
            url=url,
            concurrency=int(getattr(settings, "TIDINGS_SMTP_CONCURRENCY", 10)),
            limits=parse_rate(getattr(settings, "TIDINGS_SMTP_RATE", "")),
        )
    ]


def build_transport(config: TransportConfig) -> Transport:
    if config.kind == "smtp":
        from .smtp import SMTPTransport

        return SMTPTransport(config)
    if config.kind == "outbox":
        from .outbox import OutboxTransport

        return OutboxTransport(config)
    from .django_backend import DjangoBackendTransport

    return DjangoBackendTransport(config)
