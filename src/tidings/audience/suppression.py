"""The suppression list: addresses and domains that are never mailed, whatever else says so.

Entries keep no address in clear: an address is stored as emails.email_hmac(address).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction

from tidings.rights.audit import audit

from .emails import InvalidEmail, email_domain, email_hmac, normalise_email
from .models import Contact, Subscription, SuppressedDomain, Suppression
from .subscriptions import ACTIVE, do_set_subscription_status


def domain_and_parents(domain: str) -> list[str]:
    """``mail.example.co.uk`` -> itself, ``example.co.uk``, ``co.uk`` (not the bare TLD)."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def domain_suppressed(email: str) -> bool:
    """A suppressed domain covers its subdomains too."""
    return SuppressedDomain.objects.filter(
        domain__in=domain_and_parents(email_domain(email))
    ).exists()


def is_suppressed(email: str) -> bool:
    """True if the address or its domain is suppressed (for any reason)."""
    return Suppression.objects.filter(email_hmac=email_hmac(email)).exists() or domain_suppressed(
        email
    )


def suppression_reason(email: str) -> str | None:
    entry = Suppression.objects.filter(email_hmac=email_hmac(email)).only("reason").first()
    if entry:
        return entry.reason
    if domain_suppressed(email):
        return Suppression.Reason.MANUAL
    return None


def suppression_reasons(emails: Iterable[str]) -> dict[str, str]:
    """``suppression_reason`` for many addresses in two queries: {address: reason} for those
    suppressed (a suppressed domain reads as ``manual``), the others left out."""
    hashes = {email_hmac(email): email for email in set(emails)}
    reasons = {
        hashes[h]: reason
        for h, reason in Suppression.objects.filter(email_hmac__in=list(hashes)).values_list(
            "email_hmac", "reason"
        )
    }
    parents = {e: domain_and_parents(email_domain(e)) for e in hashes.values() if e not in reasons}
    blocked = set(
        SuppressedDomain.objects.filter(
            domain__in={d for ds in parents.values() for d in ds}
        ).values_list("domain", flat=True)
    )
    if blocked:
        for email, ds in parents.items():
            if blocked.intersection(ds):
                reasons[email] = Suppression.Reason.MANUAL
    return reasons


@transaction.atomic
def do_suppress(email: str, reason: str, *, actor=None, actor_label: str = "") -> bool:
    """Suppress one address; True if it was not suppressed before."""
    _, created = Suppression.objects.get_or_create(
        email_hmac=email_hmac(email),
        defaults={"reason": reason, "created_by": actor if getattr(actor, "pk", None) else None},
    )
    if created:
        audit("suppression.added", actor=actor, actor_label=actor_label, reason=reason, count=1)
    return created


@transaction.atomic
def do_record_hard_bounce(contact_ids: Iterable[int], *, source: str = "delivery") -> int:
    """The server said these people's mailboxes do not exist: suppress each address (reason
    hard_bounce) and mark their live subscriptions bounced.  Returns how many were suppressed.

    Called by the delivery engine (a 5xx "user unknown" while sending) and by bounce processing
    (a hard bounce report); ``source`` is the audit entries' actor label.
    """
    ids = list(contact_ids)
    suppressed = 0
    for contact_id, email in Contact.objects.filter(pk__in=ids).values_list("pk", "email"):
        suppressed += do_suppress(email, "hard_bounce", actor_label=source)
        bounced = do_set_subscription_status(
            Subscription.objects.filter(contact_id=contact_id, status__in=ACTIVE),
            Subscription.Status.BOUNCED,
        )
        if bounced:
            audit(
                "subscription.bounced",
                actor_label=source,
                obj=Contact(pk=contact_id),
                subscriptions=bounced,
            )
    return suppressed


@dataclass
class BulkResult:
    added_addresses: int = 0
    added_domains: int = 0
    already: int = 0
    invalid_lines: list[int] = field(default_factory=list)


@transaction.atomic
def do_add_suppressions(lines: Iterable[str], *, actor=None) -> BulkResult:
    """Bulk paste: one address or domain (``example.com`` or ``@example.com``) per line."""
    result = BulkResult(invalid_lines=[])
    hashes: set[str] = set()
    domains: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        if "@" not in text.lstrip("@"):
            domain = text.lstrip("@").lower().rstrip(".")
            if "." in domain and " " not in domain:
                domains.add(domain)
            else:
                result.invalid_lines.append(number)
            continue
        try:
            hashes.add(email_hmac(normalise_email(text)))
        except InvalidEmail:
            result.invalid_lines.append(number)
    existing = set(
        Suppression.objects.filter(email_hmac__in=hashes).values_list("email_hmac", flat=True)
    )
    user = actor if getattr(actor, "pk", None) else None
    Suppression.objects.bulk_create(
        [
            Suppression(email_hmac=h, reason=Suppression.Reason.MANUAL, created_by=user)
            for h in hashes - existing
        ]
    )
    known_domains = set(
        SuppressedDomain.objects.filter(domain__in=domains).values_list("domain", flat=True)
    )
    SuppressedDomain.objects.bulk_create(
        [SuppressedDomain(domain=d, created_by=user) for d in domains - known_domains]
    )
    result.added_addresses = len(hashes - existing)
    result.added_domains = len(domains - known_domains)
    result.already = len(existing) + len(known_domains)
    if result.added_addresses or result.added_domains:
        audit(
            "suppression.added",
            actor=actor,
            reason=Suppression.Reason.MANUAL,
            count=result.added_addresses,
            domains=result.added_domains,
        )
    return result


@transaction.atomic
def do_remove_suppression(entry: Suppression | SuppressedDomain, *, actor, cause: str) -> None:
    """Remove an entry; ``cause`` is a short code ("mistake", "re-subscribed"), never free text."""
    kind = "domain" if isinstance(entry, SuppressedDomain) else "address"
    reason = getattr(entry, "reason", "manual")
    entry_id = entry.pk
    entry.delete()
    audit(
        "suppression.removed", actor=actor, kind=kind, entry_id=entry_id, reason=reason, cause=cause
    )
