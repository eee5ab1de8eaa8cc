"""Senders' domain health: run the checks, keep the result, verify or unverify, tell the owners.

``do_check_sender`` runs ``checks.check_domain`` for a sender's domain (its DKIM selector, the
envelope domain of ``TIDINGS_BOUNCE_ADDRESS``) and stores the result on the sender:

- all required checks pass → the sender is verified (``verified_by = "checks"``);
- a required check fails → a sender the checks had verified is no longer verified (one an owner
  vouched for stays verified: the override is theirs, audited); campaigns already sending go on;
- a check could not be made (a DNS time-out) → nothing changes: "could not check" never blocks
  sending and never counts as a failure.

A check that passed last time and fails now is a *regression*: the owners are emailed, once,
when the transaction commits.  ``check_senders_task`` runs every sender daily (registered in
``campaigns/apps.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.tasks import task
from django.urls import reverse
from django.utils import timezone

from tidings.audience.emails import normalise_email
from tidings.lib.audit import audit

from ..models import Sender
from .health import FAIL, PASS, UNKNOWN, DomainHealth

logger = logging.getLogger(__name__)


# --- adding senders, owners vouching for them ---------------------------------------------------
@transaction.atomic
def do_add_sender(
    name: str, email: str, *, actor: Any, reply_to: str = "", dkim_selector: str = ""
) -> Sender:
    sender = Sender.objects.create(
        name=name, email=normalise_email(email), reply_to=reply_to, dkim_selector=dkim_selector
    )
    audit("sender.added", actor=actor, obj=sender)
    return sender


@transaction.atomic
def do_verify_sender(sender: Sender, verified: bool, *, actor: Any) -> None:
    """An owner marks a sender verified (usable by campaigns) whatever its domain checks say, or
    not verified.  Owners only: the view checks."""
    if sender.verified == verified and (
        not verified or sender.verified_by == Sender.VerifiedBy.OWNER
    ):
        return
    by = Sender.VerifiedBy.OWNER if verified else Sender.VerifiedBy.NOBODY
    Sender.objects.filter(pk=sender.pk).update(verified=verified, verified_by=by)
    sender.verified, sender.verified_by = verified, by
    audit(
        "sender.verified" if verified else "sender.unverified",
        actor=actor,
        obj=sender,
        by="owner",
        override=verified and sender.health_status != "pass",
        checks=sender.health_status or "never",
    )


def envelope_domain(sender: Sender) -> str:
    bounce = settings.TIDINGS_BOUNCE_ADDRESS or ""
    return bounce.rpartition("@")[2].lower() if "@" in bounce else sender.domain


def stored_health(sender: Sender) -> DomainHealth | None:
    if not sender.health:
        return None
    try:
        return DomainHealth.from_json(sender.health)
    except (KeyError, TypeError, ValueError):
        return None


def regressions(before: DomainHealth | None, after: DomainHealth) -> list[str]:
    """Labels of the checks that passed (or warned) before and fail now."""
    if before is None:
        return []
    was_ok = {c.key for c in before.checks if c.status in (PASS, "warn")}
    return [c.label for c in after.checks if c.status == FAIL and c.key in was_ok]


def do_check_sender(sender: Sender, *, actor: Any = None) -> DomainHealth:
    """Check the sender's domain now and act on the result (see the module docstring)."""
    from .checks import check_domain  # checkdmarc takes seconds to import: only when checking

    health = check_domain(
        sender.domain, selector=sender.dkim_selector, envelope_domain=envelope_domain(sender)
    )
    _record(sender, health, actor=actor)
    from .checklist import forget_checklist_snapshot

    forget_checklist_snapshot()  # the dashboard's checklist shows the new result at once
    return health


@transaction.atomic
def _record(sender: Sender, health: DomainHealth, *, actor: Any) -> None:
    sender = Sender.objects.select_for_update().get(pk=sender.pk)
    before = stored_health(sender)
    status = health.status
    sender.health = health.to_json()
    sender.health_status = status
    sender.health_checked_at = health.checked_at
    fields = ["health", "health_status", "health_checked_at"]
    change = ""
    if status == PASS and not sender.verified:
        sender.verified, sender.verified_by = True, Sender.VerifiedBy.CHECKS
        fields += ["verified", "verified_by"]
        change = "verified"
    elif status == PASS and sender.verified_by == Sender.VerifiedBy.NOBODY:
        sender.verified_by = Sender.VerifiedBy.CHECKS
        fields.append("verified_by")
    elif status == FAIL and sender.verified and sender.verified_by == Sender.VerifiedBy.CHECKS:
        sender.verified, sender.verified_by = False, Sender.VerifiedBy.NOBODY
        fields += ["verified", "verified_by"]
        change = "unverified"
    sender.save(update_fields=fields)
    failed = [c.key for c in health.failed]
    audit(
        "sender.checked",
        actor=actor,
        actor_label="" if actor is not None else "worker",
        obj=sender,
        status=status,
        failed=failed,
        could_not_check=[c.key for c in health.unknown],
    )
    if change:
        audit(
            f"sender.{change}",
            actor=actor,
            actor_label="" if actor is not None else "worker",
            obj=sender,
            by="checks",
        )
    lost = regressions(before, health)
    if lost:
        pk = sender.pk
        transaction.on_commit(lambda: _email_owners(pk, lost))


def owner_addresses() -> list[str]:
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    users = (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name="owner"))
        .distinct()
    )
    return sorted({u.email for u in users if u.email})


def _email_owners(sender_id: int, lost: list[str]) -> None:
    from tidings.audience.tokens import absolute_url

    sender = Sender.objects.filter(pk=sender_id).first()
    recipients = owner_addresses()
    if sender is None or not recipients:
        return
    health = stored_health(sender)
    lines = [
        f"- {c.label}: {c.detail}" + (f"\n  To fix it: {c.fix}" if c.fix else "")
        for c in (health.checks if health else [])
        if c.status == FAIL
    ]
    state = (
        "It is no longer verified: campaigns cannot be scheduled from it until the checks pass."
        if not sender.verified
        else "An owner vouched for it, so it stays verified."
    )
    try:
        send_mail(
            subject=f"tidings: the DNS of {sender.domain} no longer passes {', '.join(lost)}",
            message=(
                f"The daily check of the sender {sender.email} found that {', '.join(lost)} "
                f"passed before and fails now.\n\n" + "\n".join(lines) + f"\n\n{state}\n\n"
                f"Check again after fixing it: {absolute_url(reverse('campaigns:senders'))}\n"
            ),
            from_email=settings.SERVER_EMAIL,
            recipient_list=recipients,
        )
    except Exception:  # the page shows the failure either way
        logger.exception("could not email the owners about sender %s", sender_id)


@task()
def check_senders_task() -> dict[str, int]:
    """The daily job: check every sender; counts of each outcome."""
    counts = {PASS: 0, FAIL: 0, UNKNOWN: 0}
    for sender in Sender.objects.order_by("pk"):
        try:
            health = do_check_sender(sender)
        except Exception:  # one broken domain must not stop the others
            logger.exception("the domain check of sender %s failed", sender.pk)
            continue
        counts[health.status] = counts.get(health.status, 0) + 1
    return counts


@task()
def check_sender_task(sender_id: int) -> str:
    """A newly added sender is checked at once, in the worker."""
    sender = Sender.objects.filter(pk=sender_id).first()
    return do_check_sender(sender).status if sender is not None else ""


def doctor_findings() -> list[dict[str, str]]:
    """For ``tidings doctor`` (the ops app's check registry): one finding per sender domain,
    from the last stored check (the doctor must be quick; the daily job keeps them fresh).
    Each is ``{"name", "status": ok|warn|fail|skip, "summary", "fix"}``."""
    findings = []
    seen: set[str] = set()
    for sender in Sender.objects.order_by("email"):
        if sender.domain in seen:
            continue
        seen.add(sender.domain)
        health = stored_health(sender)
        name = f"sender-dns:{sender.domain}"
        if health is None:
            findings.append(
                {
                    "name": name,
                    "status": "warn",
                    "summary": f"{sender.domain} has never been checked",
                    "fix": f"run `tidings deliverability check {sender.domain}`",
                }
            )
            continue
        failed = health.failed
        status = {PASS: "ok", FAIL: "fail", UNKNOWN: "warn"}[health.status]
        findings.append(
            {
                "name": name,
                "status": status,
                "summary": (
                    f"{sender.domain}: "
                    + (
                        "fails " + ", ".join(c.label for c in failed)
                        if failed
                        else "could not be checked"
                        if health.status == UNKNOWN
                        else "SPF, DKIM, DMARC and reverse DNS pass"
                    )
                    + f" (checked {timezone.localtime(health.checked_at):%Y-%m-%d %H:%M})"
                ),
                "fix": failed[0].fix if failed else "",
            }
        )
    return findings
