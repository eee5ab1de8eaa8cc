"""What the audience app holds about a person, for the access package and erasure (see
``tidings.audience.sources``): their details, subscriptions, consent history, and the suppression
entry that keeps them off our lists."""

from __future__ import annotations

from typing import Any

from django.db import models

from .consent import proof_rows
from .models import (
    ConsentEvent,
    Contact,
    Import,
    MailingList,
    PendingPreferences,
    Subscription,
    Suppression,
)
from .sources import (
    AnyOf,
    Held,
    Kept,
    People,
    PersonalData,
    UnheldIds,
    delete_ids,
    holds_contact,
    ids_of,
    model_source,
    plain,
    register,
)


def export_contact(contact: Contact) -> list[dict[str, Any]]:
    row = {name: getattr(contact, name) for name in Contact.COLUMN_FIELDS}
    row |= {f"attribute:{k}": v for k, v in sorted(contact.attributes.items())}
    row |= {
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        "last_contact_at": contact.last_contact_at,
        # Derived from the campaigns' deliveries and events (kept by campaigns.engagement).
        "last_opened_at": contact.last_opened_at,
        "last_clicked_at": contact.last_clicked_at,
        "last_received_at": contact.last_received_at,
    }
    came_from = imported_from(contact)
    if came_from:
        row["came_from"] = came_from  # which file of which earlier tool brought them in
    return [plain(row)]


def imported_from(contact: Contact) -> list[str]:
    """The imports that subscribed this person, in words: file, tool and day (their consent
    events name each import by its source_ref, "import:<id>")."""
    from .imports.report import origin

    refs = (
        ConsentEvent.objects.filter(contact=contact, source=ConsentEvent.Source.IMPORT)
        .values_list("source_ref", flat=True)
        .distinct()
    )
    ids = {int(ref[7:]) for ref in refs if ref.startswith("import:") and ref[7:].isdigit()}
    if not ids:
        return []
    return [origin(imp) for imp in Import.objects.filter(pk__in=ids).order_by("created_at")]


def kept_fields() -> tuple[str, ...]:
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
    return tuple(f for f in kept if f in Contact.COLUMN_FIELDS)


def _blank(keep: tuple[str, ...]) -> dict[str, Any]:
    """The values of a contact that only a legal hold keeps: every other field empty."""
    values: dict[str, Any] = {name: "" for name in Contact.COLUMN_FIELDS if name not in keep}
    if "email" not in keep:
        values["email_key"] = None  # derived from the address: goes with it (never "" twice)
    return values | {"attributes": {}, "last_contact_at": None, **ENGAGEMENT_CLEARED}


# The engagement facts come from the person's events and deliveries, which their erasure removes
# or makes anonymous: a contact a legal hold keeps has none left.
ENGAGEMENT_CLEARED: dict[str, Any] = {
    "last_opened_at": None,
    "last_clicked_at": None,
    "last_received_at": None,
}


def find_contacts(people: People) -> list[int]:
    """The people's contacts: whether each goes or keeps what a hold needs is decided when the
    other sources have removed their rows (``remove_contacts`` runs last).  People the
    retention sweep found held by nothing, their contacts locked, are taken as they are."""
    if people.unheld:
        return UnheldIds(people.contact_ids)
    return ids_of(Contact._base_manager.filter(AnyOf("pk", people.contact_ids)))


def remove_contacts(ids: list[int]) -> int:
    """Runs after every other source: delete each contact nothing holds any more; one that a
    record kept under a legal minimum still holds (an order) keeps only the fields it needs.
    Returns the contacts deleted or changed (none, the second time)."""
    if isinstance(ids, UnheldIds):  # checked under lock by the sweep: nothing holds them
        held: list[int] = []
    else:
        held = ids_of(Contact._base_manager.filter(AnyOf("pk", ids)).filter(holds_contact()))
    removed = delete_ids(Contact, sorted(set(ids) - set(held)))
    if not held:
        return removed
    blank = _blank(kept_fields())
    reduced = Contact._base_manager.filter(AnyOf("pk", held)).exclude(**blank)
    return removed + reduced.update(**blank)


def _key_of(fields: tuple[str, ...]) -> tuple[str, ...]:
    return ("email_key",) if "email" in fields else ()


def kept_contact(people: People) -> list[Kept]:
    held = ids_of(
        Contact._base_manager.filter(AnyOf("pk", people.contact_ids)).filter(holds_contact())
    )
    if not held:
        return []
    fields = kept_fields()
    words = [f.replace("_", " ") for f in fields]
    listed = ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else words[0]
    listed = listed.replace("email", "email address")
    return [
        Kept(
            f"We keep your {listed} only because the records listed here need them; they go "
            "with the last of those records.",
            # email_key is the address case folded (models.Contact): kept with it.
            (Held(Contact, tuple(held), ("id", *fields, *_key_of(fields))),),
        )
    ]


def export_consent(contact: Contact) -> list[dict[str, Any]]:
    return proof_rows(contact)


def find_consent(people: People) -> list[int]:
    return ids_of(ConsentEvent.objects.filter(AnyOf("contact_id", people.contact_ids)))


def tombstone_consent_events(ids: list[int]) -> int:
    """Turn an erased person's consent events into anonymous tombstones.

    The ledger is append-only, and erasure is its one documented exception: the events stay (what
    was granted or withdrawn, when, from which source and with which wording, for the aggregate
    record), but nothing in them points to the person any more: no contact, no IP address.
    ``models.QuerySet`` rather than ``ConsentEvent.objects``, whose queryset refuses updates by
    design; tests/audience/test_consent_ledger.py allows this function, and nothing else.
    """
    if not ids:
        return 0
    return (
        models.QuerySet(ConsentEvent).filter(AnyOf("pk", ids)).update(contact=None, ip_address=None)
    )


def _suppression_of(people: People):
    return Suppression.objects.filter(AnyOf("email_hmac", people.hmacs))


def kept_suppression(people: People) -> list[Kept]:
    ids = ids_of(_suppression_of(people))
    if not ids:
        return []
    return [
        Kept(
            "A one-way hash of your email address stays on our do-not-email list, so that we "
            "never email you or add you again by mistake; nobody can read your address from it.",
            (Held(Suppression, tuple(ids), ("id", "email_hmac")),),
        )
    ]


def _pending_list_names(pending: PendingPreferences) -> list[str]:
    names = MailingList.objects.filter(pk__in=pending.list_ids).order_by("name")
    return list(names.values_list("name", flat=True))


def register_sources() -> None:
    register(
        PersonalData(
            name="contact",
            title="Your details",
            record_kind=None,
            models=(Contact,),
            export=export_contact,
            find=find_contacts,
            remove=remove_contacts,
            kept=kept_contact,
            order=1000,  # last: whether it goes depends on what the other sources left
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
        model_source(
            "pending preferences",
            PendingPreferences,
            of="contact",
            title="Changes waiting for your confirmation",
            record_kind="subscription",
            columns=(
                ("lists_to_join", _pending_list_names),
                ("contact_by", "channels"),
                ("open_and_click_statistics", "tracking"),
                ("new_details", "values"),
                ("asked_at", "created_at"),
            ),
            order=10,
            about="What you asked for on your preferences page, until you confirm it from the "
            "email we sent you (then it is done and this goes) or the link expires.",
        )
    )
    register(
        PersonalData(
            name="consent",
            title="Consent history",
            record_kind="subscription",
            models=(ConsentEvent,),
            export=export_consent,
            find=find_consent,
            remove=tombstone_consent_events,
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
            find=None,  # the entry is what keeps the address off our lists: never removed
            remove=None,
            kept=kept_suppression,
            order=12,
            about=(
                "A one-way hash of your address (not the address), so that we never email "
                "you after you left, bounced, complained or asked us to erase your data."
            ),
            retention="Kept for good, as it keeps your address off our lists; nobody can read "
            "your address from it.",
        )
    )
