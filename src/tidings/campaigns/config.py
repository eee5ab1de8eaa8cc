"""The delivery settings, read once into a frozen object: ``DeliveryConfig.from_settings()``.

This is the one place their defaults live: ``settings.py`` leaves a variable that is not set as
None, and ``from_settings`` fills in the default from the dataclass's field.  The engine reads the
configuration when it starts (``Engine(config=...)`` in tests and benchmarks); the queue's
functions take it as an argument, or read it afresh when called on their own (a script, the
demo).  Impossible values are reported at start-up by the system checks (``tidings.E010``…,
``web/checks.py``), which call ``problems()``.

=====================================  ==========  ==============================================
setting                                default     what it is
=====================================  ==========  ==============================================
TIDINGS_DELIVERY_WINDOW                200         rows a worker holds at once (claimed, being
                                                   sent, or sent and not yet recorded): the most
                                                   a crash can send twice
TIDINGS_DELIVERY_CHUNK                 100         rows per claim (at most the window)
TIDINGS_DELIVERY_FLUSH_MS              50          how long results may wait before they are
                                                   written (and at most FLUSH_SIZE of them)
TIDINGS_DELIVERY_LEASE_SECONDS         30          a silent worker's rows go back after this
TIDINGS_DELIVERY_MAX_ATTEMPTS          5           attempts before a temporary failure fails
TIDINGS_RETRY_BASE_SECONDS             60          the first retry's delay; ×2 per attempt, ±50%
TIDINGS_DELIVERY_IDLE_SECONDS          0.5         how long an idle worker waits between looks
TIDINGS_DELIVERY_BUILDERS              0           processes that render, build and sign
                                                   messages (0: in the event loop's thread;
                                                   "auto": one per core)
TIDINGS_BREAKER_WINDOW                 100         the circuit breaker looks at so many attempts
TIDINGS_BREAKER_MIN                    20          … once at least so many were made
TIDINGS_BREAKER_THRESHOLD              0.5         … and pauses above this share of failures
TIDINGS_UNREACHABLE_PAUSE_SECONDS      20          pause a campaign no server took mail of for so
                                                   long
TIDINGS_OUTGOING_KEEP_DAYS             30          finished one-off messages are forgotten after
TIDINGS_BOUNCE_ADDRESS                 ""          the envelope sender (blank: the From address)
TIDINGS_BOUNCE_VERP                    False       one envelope sender per row (needs the above)
TIDINGS_SYSTEM_TRANSPORT               ""          the transport of system mail (blank: any)
TIDINGS_COMPLAINT_PAUSE_RATE           0.003       a sending campaign pauses itself when more
                                                   than this share of its delivered messages
                                                   were reported as spam…
TIDINGS_COMPLAINT_PAUSE_MIN            1000        … once at least so many were delivered
TIDINGS_BOUNCE_PAUSE_RATE              0.05        … or when more than this share hard-bounced…
TIDINGS_BOUNCE_PAUSE_MIN               100         … once at least so many were handed over
TIDINGS_DOMAIN_BACKOFF_SECONDS         60          a receiving domain that answers 421 (or
                                                   another "slow down") is left alone this long
                                                   (×2 each time it answers so again) …
TIDINGS_DOMAIN_BACKOFF_MAX_SECONDS     3600        … at most this long (queue.deferrals)
=====================================  ==========  ==============================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings

# Results written per batch at most (and as soon as there are that many).
FLUSH_SIZE = 50

# Field name -> Django setting name.
SETTING_NAMES = {
    "window": "TIDINGS_DELIVERY_WINDOW",
    "chunk": "TIDINGS_DELIVERY_CHUNK",
    "flush_ms": "TIDINGS_DELIVERY_FLUSH_MS",
    "lease_seconds": "TIDINGS_DELIVERY_LEASE_SECONDS",
    "max_attempts": "TIDINGS_DELIVERY_MAX_ATTEMPTS",
    "retry_base_seconds": "TIDINGS_RETRY_BASE_SECONDS",
    "idle_seconds": "TIDINGS_DELIVERY_IDLE_SECONDS",
    "builders": "TIDINGS_DELIVERY_BUILDERS",
    "breaker_window": "TIDINGS_BREAKER_WINDOW",
    "breaker_min": "TIDINGS_BREAKER_MIN",
    "breaker_threshold": "TIDINGS_BREAKER_THRESHOLD",
    "unreachable_pause_seconds": "TIDINGS_UNREACHABLE_PAUSE_SECONDS",
    "outgoing_keep_days": "TIDINGS_OUTGOING_KEEP_DAYS",
    "bounce_address": "TIDINGS_BOUNCE_ADDRESS",
    "bounce_verp": "TIDINGS_BOUNCE_VERP",
    "system_transport": "TIDINGS_SYSTEM_TRANSPORT",
    "complaint_pause_rate": "TIDINGS_COMPLAINT_PAUSE_RATE",
    "complaint_pause_min": "TIDINGS_COMPLAINT_PAUSE_MIN",
    "bounce_pause_rate": "TIDINGS_BOUNCE_PAUSE_RATE",
    "bounce_pause_min": "TIDINGS_BOUNCE_PAUSE_MIN",
    "domain_backoff_seconds": "TIDINGS_DOMAIN_BACKOFF_SECONDS",
    "domain_backoff_max_seconds": "TIDINGS_DOMAIN_BACKOFF_MAX_SECONDS",
}


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """How the queue and the engine behave (see the module docstring for each field)."""

    window: int = 200
    chunk: int = 100
    flush_ms: float = 50.0
    lease_seconds: float = 30.0
    max_attempts: int = 5
    retry_base_seconds: float = 60.0
    idle_seconds: float = 0.5
    builders: int = 0
    breaker_window: int = 100
    breaker_min: int = 20
    breaker_threshold: float = 0.5
    unreachable_pause_seconds: float = 20.0
    outgoing_keep_days: int = 30
    bounce_address: str = ""
    bounce_verp: bool = False
    system_transport: str = ""
    complaint_pause_rate: float = 0.003
    complaint_pause_min: int = 1000
    bounce_pause_rate: float = 0.05
    bounce_pause_min: int = 100
    domain_backoff_seconds: float = 60.0
    domain_backoff_max_seconds: float = 3600.0

    @classmethod
    def from_settings(cls, **overrides: Any) -> DeliveryConfig:
        """The configuration Django's settings give (a setting that is None or "" takes the
        default), with ``overrides`` (None values ignored) on top.  Raises ValueError for a
        value of the wrong type: the system checks report it first."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = overrides.get(field.name)
            if raw is None:
                raw = getattr(settings, SETTING_NAMES[field.name], None)
            if raw is None or raw == "":
                continue
            values[field.name] = _coerce(field.name, raw, field.default)
        config = cls(**values)
        if 1 <= config.window < config.chunk:  # a claim never holds more than the window
            config = cls(**{**values, "chunk": config.window})
        return config

    @property
    def flush_seconds(self) -> float:
        return self.flush_ms / 1000

    @property
    def envelope_verp(self) -> bool:
        """VERP only works with a bounce address to put the row's name in."""
        return self.bounce_verp and bool(self.bounce_address)

    def problems(self) -> list[tuple[str, str]]:
        """(setting name, what is wrong) for each impossible value: the system checks' list."""
        found = []
        for name in ("window", "chunk", "max_attempts", "breaker_window"):
            if getattr(self, name) < 1:
                found.append((SETTING_NAMES[name], "must be at least 1"))
        for name in (
            "flush_ms",
            "lease_seconds",
            "retry_base_seconds",
            "idle_seconds",
            "domain_backoff_seconds",
            "domain_backoff_max_seconds",
        ):
            if getattr(self, name) <= 0:
                found.append((SETTING_NAMES[name], "must be more than 0"))
        if not 0 <= self.breaker_threshold < 1:
            found.append((SETTING_NAMES["breaker_threshold"], "must be a fraction from 0 to 1"))
        for name in ("complaint_pause_rate", "bounce_pause_rate"):
            if not 0 < getattr(self, name) <= 1:
                found.append((SETTING_NAMES[name], "must be a fraction above 0, at most 1"))
        for name in ("complaint_pause_min", "bounce_pause_min"):
            if getattr(self, name) < 1:
                found.append((SETTING_NAMES[name], "must be at least 1"))
        if self.builders < 0:
            found.append((SETTING_NAMES["builders"], "must be 0 (none), a number or auto"))
        if self.bounce_verp and not self.bounce_address:
            found.append(
                (SETTING_NAMES["bounce_verp"], "needs TIDINGS_BOUNCE_ADDRESS (ignored without)")
            )
        return found


def _coerce(name: str, raw: Any, default: Any) -> Any:
    setting = SETTING_NAMES[name]
    if name == "builders" and str(raw).strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        if isinstance(default, bool):
            if isinstance(raw, str):
                return raw.strip().lower() in {"1", "true", "yes", "on"}
            return bool(raw)
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{setting}: expected a number, got {raw!r}") from None
