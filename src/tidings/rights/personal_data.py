"""The person's own privacy requests, as a source of the access package and erasure.

Erasure keeps each request (a controller must be able to show it answered), with nothing in it
that names the person: no contact, no address, no details.  The keyed hash stays."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q

from tidings.audience.sources import (
    AnyOf,
    Held,
    Kept,
    People,
    PersonalData,
    ids_of,
    key_in,
    model_source,
    register,
    update_ids,
)
from tidings.lib.models import AuditEntry

from .models import RightsRequest


def _requests_of(people: People):
    return RightsRequest.objects.filter(
        Q(AnyOf("contact_id", people.contact_ids)) | Q(AnyOf("email_hmac", people.hmacs))
    )


def find_requests(people: People) -> list[int]:
    """The requests that still name the person (an open one included: the request being
    fulfilled is closed, and its address cleared, by its own action)."""
    return ids_of(
        _requests_of(people).filter(Q(contact__isnull=False) | ~Q(email="") | ~Q(details=""))
    )


def remove_requests(ids: list[int]) -> int:
    return update_ids(RightsRequest, ids, contact=None, email="", details="")


def kept_requests(people: People) -> list[Kept]:
    ids = ids_of(_requests_of(people))
    if not ids:
        return []
    return [
        Kept(
            "A record of your privacy requests and of what we did about them stays, without "
            "your name or address (only a one-way hash of the address), so that we can show "
            "that we answered them as the law requires.",
            (Held(RightsRequest, tuple(ids), ("id", "email_hmac")),),
        )
    ]


# --- the audit log ----------------------------------------------------------------------------
CONTACT_TYPE = "audience.contact"

# What an audit entry about a person says, in words (others: the action's name, humanised).
ACTION_WORDS = {
    "signup.confirmed": "You confirmed your subscription",
    "subscription.unsubscribed": "You left a mailing list",
    "subscription.unsubscribed_all": "You left every mailing list",
    "preferences.updated": "Your email preferences were changed",
    "contact.updated": "Your details were updated",
    "contact.rectified": "Your details were corrected",
    "contact.objected_to_marketing": "You objected to marketing",
    "export.consent_proof": "We exported the proof of your consent",
    "enquiry.received": "We received an enquiry from you",
    "order.created": "We recorded an order of yours",
    "support_contact.added": "You were added as a support contact for your company",
    "rights.request_received": "We received a privacy request from you",
}


def _deliveries_of(people: People) -> list[int]:
    from tidings.campaigns.models import Delivery

    return ids_of(Delivery.objects.filter(AnyOf("contact_id", people.contact_ids)))


def _entries_of(people: People, deliveries: list[int]):
    """Entries about the people: their contact (the object, or ``details.contact``) or one of
    their deliveries (``details.delivery``: a bounce processed)."""
    ids = list(people.contact_ids)
    condition = Q(object_type=CONTACT_TYPE) & Q(AnyOf("object_id", [str(pk) for pk in ids]))
    condition |= key_in("details", "contact", ids)
    if deliveries:
        condition |= key_in("details", "delivery", deliveries)
    return AuditEntry.objects.filter(condition) if ids else AuditEntry.objects.none()


def export_log(contact: Any) -> list[dict[str, Any]]:
    people = People.of(contact)
    return [
        {
            "when": entry.at.isoformat(),
            "what": ACTION_WORDS.get(entry.action)
            or entry.action.replace(".", ": ").replace("_", " ").capitalize(),
        }
        for entry in _entries_of(people, _deliveries_of(people)).order_by("at", "pk")
    ]


def find_log(people: People) -> dict[str, list[int]]:
    deliveries = _deliveries_of(people)
    entries = ids_of(_entries_of(people, deliveries))
    if not entries:
        return {}
    return {"entries": entries, "contacts": list(people.contact_ids), "deliveries": deliveries}


def forget_in_audit_log(found: dict[str, list[int]]) -> int:
    """The audit log keeps what was done and when, but no longer whom it was done to: the
    erased person's contact id goes from the entries (their object, ``details.contact``), and
    so do their deliveries' ids (``details.delivery``).

    The log is append-only, and erasure is its one exception, as for the consent ledger:
    ``models.QuerySet`` rather than ``AuditEntry.objects``, which refuses updates by design.
    """
    ids, contacts = found["entries"], found["contacts"]
    forget = {"contact": set(contacts), "delivery": set(found["deliveries"])}
    entries: models.QuerySet[AuditEntry] = models.QuerySet(AuditEntry).filter(AnyOf("pk", ids))
    changed = set(
        entries.filter(object_type=CONTACT_TYPE)
        .filter(AnyOf("object_id", [str(pk) for pk in contacts]))
        .order_by()
        .values_list("pk", flat=True)
    )
    entries.filter(AnyOf("pk", sorted(changed))).update(object_id="")
    rows = []
    for entry in entries.only("pk", "action", "details"):
        details = {
            key: None if key in forget and value in forget[key] else value
            for key, value in entry.details.items()
        }
        if entry.action == "contact.merged" and details.get("contact", 0) is None:
            details["merged"] = None  # the contact merged into the erased one: theirs too
        if details != entry.details:
            entry.details = details
            rows.append(entry)
    every_entry: models.QuerySet[AuditEntry] = models.QuerySet(AuditEntry)
    every_entry.bulk_update(rows, ["details"], batch_size=500)
    return len(changed | {entry.pk for entry in rows})


def register_sources() -> None:
    from tidings.audience.merge import register_merger

    register_merger(RightsRequest, "contact")
    register(
        PersonalData(
            name="activity_log",
            title="Our log of what we did with your records",
            record_kind=None,
            models=(AuditEntry,),
            export=export_log,
            find=find_log,
            remove=forget_in_audit_log,
            order=41,
            about=(
                "Our audit log records each change to your records and who made it, to show "
                "that we handle your data as the law requires; erasure removes you from it."
            ),
            retention="The log is kept to show how we handled your data; when your data is "
            "erased, the log no longer says whom an entry was about.",
        )
    )
    register(
        model_source(
            "privacy_requests",
            RightsRequest,
            of=_requests_of,
            title="Your privacy requests",
            record_kind=None,
            columns=(
                ("reference", "pk"),
                "kind",
                "state",
                "received_at",
                "due_on",
                "extended_to",
                "extension_reason",
                "closed_at",
                "refusal_reason",
                # What they wrote with a correction request (kept only while it is open).
                "details",
            ),
            order_by=("received_at", "pk"),
            find=find_requests,
            remove=remove_requests,
            kept=kept_requests,
            order=40,
            about=(
                "The requests you made under data-protection law, kept to show that we "
                "answered them (a legal obligation); erasure removes what names you."
            ),
            retention="Kept to show that we answered them; your address is removed from each "
            "once it is answered.",
        )
    )
