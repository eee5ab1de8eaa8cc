"""What the audience app holds about a person, for the access package and erasure (see
``tidings.rights.sources``): their details, subscriptions, consent history, and the suppression
entry that keeps them off our lists."""

from __future__ import annotations

from typing import Any

from tidings.rights.sources import PersonalData, model_source, plain, register

from .consent import proof_rows
from .emails import email_hmac
from .models import ConsentEvent, Contact, Subscription, Suppression


def export_contact(contact: Contact) -> list[dict[str, Any]]:
    row = {name: getattr(contact, name) for name in Contact.COLUMN_FIELDS}
    row |= {f"attribute:{k}": v for k, v in sorted(contact.attributes.items())}
    row |= {
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        "last_contact_at": contact.last_contact_at,
    }
    return [plain(row)]


def _kept_fields() -> tuple[str, ...]:
    """The fields a record kept under a legal minimum needs: the required fields of the purposes
    whose records are legal minimums (an order needs a name, an address and a company)."""
    from tidings.policy import get_policy

    policy = get_policy()
    kept: list[str] = ["email"]
    for kind, rule in policy.retention.items():
        if not rule.minimum:
            continue
        for purpose in policy.purposes_for_record(kind):
            kept += [f for f in policy.fields_for(purpose).required if f not in kept]
    return tuple(kept)


def erase_contact(contact: Contact) -> int:
    """Delete the contact, or, while a record kept under a legal minimum still holds it (an
    order), keep only the fields that record needs.  Runs after every other source."""
    from tidings.rights.retention import erase_contacts_left_with_nothing

    if erase_contacts_left_with_nothing([contact.pk]):
        return 1
    if not Contact.objects.filter(pk=contact.pk).exists():
        return 0
    keep = _kept_fields()
    blank = {
        name: "" for name in Contact.COLUMN_FIELDS if name not in keep and getattr(contact, name)
    }
    if not blank and not contact.attributes and contact.last_contact_at is None:
        return 0
    Contact.objects.filter(pk=contact.pk).update(**blank, attributes={}, last_contact_at=None)
    return 1


def kept_contact(contact: Contact) -> list[dict[str, Any]]:
    from tidings.rights.retention import holds_contact

    if not Contact.objects.filter(pk=contact.pk).filter(holds_contact()).exists():
        return []
    fields = ", ".join(f.replace("_", " ") for f in _kept_fields())
    return [{"what": f"Your {fields}, with the records below that need them", "until": ""}]


def export_consent(contact: Contact) -> list[dict[str, Any]]:
    return proof_rows(contact)


def erase_consent(contact: Contact) -> int:
    """The ledger's events become anonymous tombstones (see rights.retention)."""
    from tidings.rights.retention import _tombstone_consent_events

    return _tombstone_consent_events([contact.pk])


def _suppression_of(contact: Contact):
    return Suppression.objects.filter(email_hmac=email_hmac(contact.email))


def erase_suppression(contact: Contact) -> int:
    return 0  # the entry is what keeps the address off our lists: erasure adds it, never removes


def kept_suppression(contact: Contact) -> list[dict[str, Any]]:
    if not _suppression_of(contact).exists():
        return []
    return [
        {
            "what": "A one-way hash of your email address on our do-not-email list",
            "until": "kept, so that we never email or add you again by mistake",
        }
    ]


def register_sources() -> None:
    register(
        PersonalData(
            name="contact",
            title="Your details",
            record_kind=None,
            models=(Contact,),
            export=export_contact,
            erase=erase_contact,
            kept=kept_contact,
            order=1000,  # last: erasing it depends on what the other sources left
            about="Your name and contact details, held for the purposes of your records below.",
        )
    )
    register(
        model_source(
            "subscriptions",
            Subscription,
            of="contact",
            title="Newsletter subscriptions",
            record_kind="subscription",
            columns=(
                ("list", "mailing_list.name"),
                ("topic", "mailing_list.topic"),
                "status",
                "created_at",
                "confirmed_at",
                "unsubscribed_at",
            ),
            related=("mailing_list",),
            order=10,
        )
    )
    register(
        PersonalData(
            name="consent",
            title="Consent history",
            record_kind="subscription",
            models=(ConsentEvent,),
            export=export_consent,
            erase=erase_consent,
            order=11,
            about="Every consent you gave or withdrew: our proof that we may email you.",
        )
    )
    register(
        model_source(
            "suppression",
            Suppression,
            of=_suppression_of,  # one entry at most: the hash is unique
            title="Do-not-email list",
            record_kind=None,
            columns=("reason", ("since", "created_at")),
            erase=erase_suppression,
            kept=kept_suppression,
            order=12,
            about=(
                "A one-way hash of your address (not the address), so that we never email "
                "you after you left, bounced, complained or asked us to erase your data."
            ),
        )
    )
