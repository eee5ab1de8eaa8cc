"""Per-domain back-off: a receiving domain that says "slow down" is left alone for a while.

When a domain answers a recipient with 421 ("too many connections", "try again later"), 454
("throttling") or another reply that asks us to slow down (``transports.base.THROTTLED``: to RCPT,
so it concerns that recipient's domain; the same reply to the connection, our sender or the
message's data is the server's, and slows the whole transport down instead), the message is
retried later as any temporary failure is, and the *domain* is deferred: no worker
sends anything to it before ``DomainDeferral.retry_at``.  The wait starts at
``TIDINGS_DOMAIN_BACKOFF_SECONDS`` (60) and doubles with each deferral in a row, up to
``TIDINGS_DOMAIN_BACKOFF_MAX_SECONDS`` (3600).  Replies for messages sent before a deferral
began (several were on the wire at once) belong to the same deferral and do not double it.

The deferral is a database row, so every worker on every machine sees it (each reads the list
every second): rows a worker claims for a deferred domain go back to the queue at once, to be
claimed again at ``retry_at``, without spending an attempt; the rest of the queue flows on.  The
first message the domain accepts after ``retry_at`` ends the deferral.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..config import DeliveryConfig
from ..models import DomainDeferral


def deferring() -> dict[str, datetime]:
    """Every deferred domain and when it may be sent to again (a time past: its deferral ends
    with the next message it accepts).  Few rows: read whole."""
    return dict(DomainDeferral.objects.values_list("domain", "retry_at"))


def backoff(failures: int, config: DeliveryConfig) -> timedelta:
    """The wait after the ``failures``-th deferral in a row: doubling, capped."""
    seconds = config.domain_backoff_seconds * 2 ** max(0, failures - 1)
    return timedelta(seconds=min(seconds, config.domain_backoff_max_seconds))


def note_deferrals(
    replies: Mapping[str, tuple[int | None, str]],
    *,
    now: datetime | None = None,
    config: DeliveryConfig | None = None,
) -> dict[str, datetime]:
    """Record that each domain of ``replies`` (domain -> (code, error)) asked us to slow down.
    Returns the domains with their ``retry_at``.  Call it in a transaction: the rows are locked
    while they are updated, so two workers noting the same domain at once count it once."""
    config = config or DeliveryConfig.from_settings()
    now = now or timezone.now()
    noted: dict[str, datetime] = {}
    for domain, (code, error) in sorted(replies.items()):
        found = DomainDeferral.objects.select_for_update().filter(domain=domain).first()
        if found is None:
            retry_at = now + backoff(1, config)
            try:
                with transaction.atomic():
                    DomainDeferral.objects.create(
                        domain=domain,
                        retry_at=retry_at,
                        code=code,
                        error=error[:300],
                        since=now,
                        updated_at=now,
                    )
            except IntegrityError:  # another worker noted it meanwhile: theirs stands
                found = DomainDeferral.objects.get(domain=domain)
                noted[domain] = found.retry_at
                continue
            noted[domain] = retry_at
            continue
        if found.retry_at > now:  # sent before this deferral began: the same one
            noted[domain] = found.retry_at
            continue
        found.failures += 1
        found.retry_at = now + backoff(found.failures, config)
        found.code, found.error, found.updated_at = code, error[:300], now
        found.save(update_fields=["failures", "retry_at", "code", "error", "updated_at"])
        noted[domain] = found.retry_at
    return noted


def clear_deferrals(domains: Iterable[str], *, now: datetime | None = None) -> int:
    """Domains that accepted a message: their deferral, if its wait is over, ends."""
    domains = sorted(set(domains))
    if not domains:
        return 0
    now = now or timezone.now()
    deleted, _ = DomainDeferral.objects.filter(domain__in=domains, retry_at__lte=now).delete()
    return deleted


def deferral_text(domain: str, retry_at: datetime) -> str:
    """What the operator reads: "example.com is deferring: retrying at 14:05" (local time)."""
    return f"{domain} is deferring: retrying at {timezone.localtime(retry_at):%H:%M}"


def deferral_texts(now: datetime | None = None) -> list[str]:
    """Each domain deferring now, in words (deferral_text), soonest first."""
    now = now or timezone.now()
    rows = DomainDeferral.objects.filter(retry_at__gt=now).order_by("retry_at", "domain")
    return [deferral_text(domain, at) for domain, at in rows.values_list("domain", "retry_at")]
