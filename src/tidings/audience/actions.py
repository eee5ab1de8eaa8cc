"""Every change to people, lists and consent goes through these named actions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from tidings.policy import get_policy

from .emails import normalise_email
from .models import ConsentEvent, ConsentWording, Contact, MailingList, Subscription


class FieldNotAllowed(ValueError):
    pass


def allowed_contact_fields(purpose: str) -> tuple[str, ...]:
    return get_policy().fields_for(purpose).all


def check_fields(values: Mapping[str, Any], purpose: str) -> None:
    """Refuse any field the purpose may not collect, and any missing required one."""
    fields = get_policy().fields_for(purpose)
    unknown = sorted(set(values) - set(fields.all))
    if unknown:
        raise FieldNotAllowed(f"the {purpose} purpose may not collect: {', '.join(unknown)}")
    missing = [f for f in fields.required if not values.get(f)]
    if missing:
        raise FieldNotAllowed(f"missing required field(s): {', '.join(missing)}")


def wording(text: str) -> ConsentWording:
    """The stored copy of a consent wording (created once, shared by every event that used it)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    obj, _ = ConsentWording.objects.get_or_create(sha256=digest, defaults={"text": text})
    return obj


@transaction.atomic
def do_create_contact(values: Mapping[str, Any], *, purpose: str) -> tuple[Contact, bool]:
    """Create the contact for these values, or return the existing one with the same address.

    Only fields the purpose collects are accepted; an existing contact's blank fields are filled
    in, but what it already holds is not overwritten by an anonymous submission.
    """
    check_fields(values, purpose)
    data = dict(values)
    data["email"] = normalise_email(data["email"])
    columns = {k: v for k, v in data.items() if k in Contact.COLUMN_FIELDS}
    attributes = {k: v for k, v in data.items() if k not in Contact.COLUMN_FIELDS}
    contact = Contact.objects.filter(email__iexact=data["email"]).first()
    if contact is None:
        contact = Contact.objects.create(**columns, attributes=attributes)
        return contact, True
    changed = [k for k, v in columns.items() if v and not getattr(contact, k)]
    for key in changed:
        setattr(contact, key, columns[key])
    new_attrs = {k: v for k, v in attributes.items() if k not in contact.attributes}
    if new_attrs:
        contact.attributes = {**contact.attributes, **new_attrs}
        changed.append("attributes")
    if changed:
        contact.save(update_fields=[*changed, "updated_at"])
    return contact, False


@transaction.atomic
def do_subscribe(
    contact: Contact,
    mailing_list: MailingList,
    *,
    source: str,
    source_ref: str = "",
    wording_text: str,
    confirmed: bool,
    ip_address: str | None = None,
) -> Subscription:
    """Subscribe a contact to a list and record the consent that allows it."""
    now = timezone.now()
    status = Subscription.Status.CONFIRMED if confirmed else Subscription.Status.PENDING
    sub, created = Subscription.objects.get_or_create(
        contact=contact,
        mailing_list=mailing_list,
        defaults={"status": status, "confirmed_at": now if confirmed else None},
    )
    if not created and sub.status != Subscription.Status.CONFIRMED:
        sub.status = status
        sub.confirmed_at = now if confirmed else None
        sub.unsubscribed_at = None
        sub.save(update_fields=["status", "confirmed_at", "unsubscribed_at", "updated_at"])
    ConsentEvent.objects.create(
        contact=contact,
        purpose="newsletter",
        channel="email",
        mailing_list=mailing_list,
        topic=mailing_list.topic,
        action=ConsentEvent.Action.GRANTED,
        at=now,
        source=source,
        source_ref=source_ref,
        wording=wording(wording_text),
        ip_address=ip_address,
    )
    return sub
