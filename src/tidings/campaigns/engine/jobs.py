"""Which claimed rows become jobs: the people who may still be emailed, checked per batch.

One query loads the contacts of a batch that still consent to the campaign's topic (the targeting
rule, ``targeting.consent_condition``); two more look their addresses and domains up in the
suppression list (``audience.suppression``'s rules); one more, when the campaign tracks, asks
which of them allow tracking.  An unsubscribe therefore stops mail even to a campaign that is
already sending.  The rows that will not be sent come back as "skipped" results.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from tidings.audience.consent import tracked_contact_ids
from tidings.audience.emails import email_domain, email_hmac
from tidings.audience.models import Contact, SuppressedDomain, Suppression
from tidings.audience.suppression import domain_and_parents

from ..models import OutgoingMessage
from ..queue import Claimed, Result
from ..queue.claims import one_parameter
from .context import CampaignContext, Job, OneOffFactories


def _skip(row: Claimed, reason: str) -> Result:
    return Result(row, "skipped", error=reason)


def _refused(
    context: CampaignContext, rows: list[Claimed]
) -> tuple[dict[int, Contact], dict[int, str]]:
    """(the contacts of ``rows`` who may still be emailed, by id; why each other row may not go,
    by row id)."""
    ids = [row.contact_id for row in rows if row.contact_id]
    allowed = {contact.pk: contact for contact in context.consenting(ids)} if ids else {}
    hashes = {email_hmac(contact.email): pk for pk, contact in allowed.items()}
    suppressed = {
        hashes[h]
        for h in Suppression.objects.filter(
            email_hmac__in=one_parameter(hashes, "text")
        ).values_list("email_hmac", flat=True)
    }
    domains = {pk: domain_and_parents(email_domain(c.email)) for pk, c in allowed.items()}
    blocked = set(
        SuppressedDomain.objects.filter(
            domain__in=one_parameter({d for parents in domains.values() for d in parents}, "text")
        ).values_list("domain", flat=True)
    )
    if blocked:
        suppressed |= {pk for pk, parents in domains.items() if blocked.intersection(parents)}
    # A contact not allowed any more may be gone altogether: erased since the row was claimed
    # (the re-check), its row still naming it.  Asked only when someone is refused.
    refused = {pk for pk in ids if pk not in allowed}
    present = (
        set(Contact.objects.filter(pk__in=one_parameter(refused)).values_list("pk", flat=True))
        if refused
        else set()
    )
    reasons: dict[int, str] = {}
    for row in rows:
        if row.contact_id is None or row.contact_id in refused - present:
            reasons[row.id] = "the contact was erased"
        elif row.contact_id not in allowed:
            reasons[row.id] = "no consent at send time (unsubscribed)"
        elif row.contact_id in suppressed:
            reasons[row.id] = "suppressed"
    return allowed, reasons


def campaign_jobs(context: CampaignContext, rows: list[Claimed]) -> tuple[list[Job], list[Result]]:
    """(jobs for the rows whose contact may still be emailed, results for the others)."""
    allowed, reasons = _refused(context, rows)
    tracked: set[int] = set()
    if context.tracker is not None and allowed:
        tracked = tracked_contact_ids(allowed)
    jobs, skipped = [], []
    for row in rows:
        if row.id in reasons:
            skipped.append(_skip(row, reasons[row.id]))
            continue
        contact = allowed[row.contact_id]  # type: ignore[index]
        track = row.contact_id in tracked
        row.domain = email_domain(contact.email)
        jobs.append(Job(row, contact, context.route, campaign=context, track=track))
    return jobs, skipped


def withdrawn(context: CampaignContext, rows: list[Claimed]) -> dict[int, str]:
    """Why each of ``rows`` (handed to the senders, not yet sent) may no longer go, by row id:
    asked again every second while they wait for their turn, so an unsubscribe, an erasure or a
    suppression that commits meanwhile stops their message too."""
    return _refused(context, rows)[1]


# Send-time checks of other apps' one-off mail, by the start of its kind ("journey:"):
# ``check([(message, contact), ...])`` → {message id: why it may not go now (never personal)}.
# A journey's mail may wait in the queue (a rate limit, a retry) after its step checked consent;
# as for campaign mail, a withdrawal or a suppression meanwhile must still stop it.
SendCheck = Callable[[list[tuple[OutgoingMessage, Contact]]], dict[int, str]]
_SEND_CHECKS: dict[str, SendCheck] = {}


def register_send_check(kind_prefix: str, check: SendCheck) -> None:
    """Have ``check`` decide, when they are sent, whether messages of kind ``kind_prefix…``
    may still go (journeys: consent and the suppression list, as their send step did)."""
    _SEND_CHECKS[kind_prefix] = check


def _refusals(messages: dict[int, OutgoingMessage], contacts: dict[int, Contact]) -> dict[int, str]:
    refusals: dict[int, str] = {}
    for prefix, check in _SEND_CHECKS.items():
        pairs = [
            (m, contacts[m.contact_id])
            for m in messages.values()
            if m.kind.startswith(prefix) and m.contact_id in contacts
        ]
        if pairs:
            refusals.update(check(pairs))
    return refusals


def one_off_jobs(
    rows: list[Claimed], one_off: OneOffFactories, transport_names: Collection[str]
) -> tuple[list[Job], list[Result]]:
    """(jobs for one-off messages whose contact still exists and that their app's send-time
    check lets go, results for the others)."""
    messages = OutgoingMessage.objects.in_bulk([row.id for row in rows])
    contacts = Contact.objects.in_bulk([row.contact_id for row in rows if row.contact_id])
    refusals = _refusals(messages, contacts)
    jobs, skipped = [], []
    for row in rows:
        message = messages[row.id]
        contact = contacts.get(row.contact_id)
        if contact is None:
            skipped.append(_skip(row, "the contact was erased"))
            continue
        if row.id in refusals:
            skipped.append(_skip(row, refusals[row.id][:300]))
            continue
        row.domain = email_domain(contact.email)
        route = message.transport if message.transport in transport_names else ""
        factory = one_off.prepare(
            message.from_email,
            message.kind,
            automatic="Auto-Submitted" not in (message.headers or {}),
        )
        jobs.append(Job(row, contact, route, message=message, factory=factory))
    return jobs, skipped
