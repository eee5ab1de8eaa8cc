"""Actions operators take on contacts and lists (merged into actions.py once it settles)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from tidings.rights.audit import audit

from .actions import wording
from .emails import normalise_email
from .models import ConsentEvent, Contact, MailingList, Subscription


@transaction.atomic
def do_update_contact(contact: Contact, values: dict, *, actor) -> list[str]:
    """Rectify a contact's fields; the audit log keeps which fields changed, never the values."""
    changed = []
    for key, value in values.items():
        if key == "email":
            value = normalise_email(value)
        if getattr(contact, key) != value:
            setattr(contact, key, value)
            changed.append(key)
    if changed:
        contact.save(update_fields=[*changed, "updated_at"])
        audit("contact.rectified", actor=actor, obj=contact, fields=sorted(changed))
    return changed


@transaction.atomic
def do_add_to_list(
    contact_ids: Iterable[int], mailing_list: MailingList, *, consent_source: str, actor
) -> int:
    """Subscribe contacts (confirmed) on an operator's word, recording how they consented."""
    ids = set(contact_ids)
    already = set(
        Subscription.objects.filter(
            mailing_list=mailing_list, contact_id__in=ids, status=Subscription.Status.CONFIRMED
        ).values_list("contact_id", flat=True)
    )
    todo = sorted(ids - already)
    if not todo:
        return 0
    now = timezone.now()
    existing = {
        s.contact_id: s
        for s in Subscription.objects.filter(mailing_list=mailing_list, contact_id__in=todo)
    }
    to_update = []
    for contact_id in todo:
        sub = existing.get(contact_id)
        if sub:
            sub.status, sub.confirmed_at, sub.unsubscribed_at = "confirmed", now, None
            to_update.append(sub)
    Subscription.objects.bulk_update(to_update, ["status", "confirmed_at", "unsubscribed_at"])
    Subscription.objects.bulk_create(
        [
            Subscription(
                contact_id=c, mailing_list=mailing_list, status="confirmed", confirmed_at=now
            )
            for c in todo
            if c not in existing
        ]
    )
    text = wording(consent_source)
    ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                contact_id=c,
                purpose="newsletter",
                channel="email",
                mailing_list=mailing_list,
                topic=mailing_list.topic,
                action=ConsentEvent.Action.GRANTED,
                at=now,
                source=ConsentEvent.Source.OPERATOR,
                source_ref=f"user:{actor.pk}",
                wording=text,
            )
            for c in todo
        ]
    )
    audit("list.contacts_added", actor=actor, obj=mailing_list, count=len(todo))
    return len(todo)


@transaction.atomic
def do_remove_from_list(contact_ids: Iterable[int], mailing_list: MailingList, *, actor) -> int:
    """Unsubscribe contacts from a list (their consent is recorded as withdrawn by an operator)."""
    now = timezone.now()
    subs = list(
        Subscription.objects.filter(
            mailing_list=mailing_list, contact_id__in=set(contact_ids)
        ).exclude(status=Subscription.Status.UNSUBSCRIBED)
    )
    for sub in subs:
        sub.status, sub.unsubscribed_at = Subscription.Status.UNSUBSCRIBED, now
    Subscription.objects.bulk_update(subs, ["status", "unsubscribed_at"])
    ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                contact_id=s.contact_id,
                purpose="newsletter",
                channel="email",
                mailing_list=mailing_list,
                topic=mailing_list.topic,
                action=ConsentEvent.Action.WITHDRAWN,
                at=now,
                source=ConsentEvent.Source.OPERATOR,
                source_ref=f"user:{actor.pk}",
            )
            for s in subs
        ]
    )
    if subs:
        audit("list.contacts_removed", actor=actor, obj=mailing_list, count=len(subs))
    return len(subs)


def do_bulk_list_action(
    contacts,
    action: str,
    mailing_list: MailingList,
    *,
    consent_source: str = "",
    actor,
    chunk: int = 5000,
) -> int:
    """Apply add/remove to every contact of a queryset, a chunk per transaction."""
    done = 0
    batch: list[int] = []
    for contact_id in contacts.order_by().values_list("pk", flat=True).iterator(chunk_size=chunk):
        batch.append(contact_id)
        if len(batch) >= chunk:
            done += _list_action(batch, action, mailing_list, consent_source, actor)
            batch = []
    if batch:
        done += _list_action(batch, action, mailing_list, consent_source, actor)
    return done


def _list_action(ids, action, mailing_list, consent_source, actor) -> int:
    if action == "add":
        return do_add_to_list(ids, mailing_list, consent_source=consent_source, actor=actor)
    return do_remove_from_list(ids, mailing_list, actor=actor)


@transaction.atomic
def do_save_list(form, *, actor) -> MailingList:
    created = form.instance.pk is None
    mailing_list = form.save()
    audit("list.created" if created else "list.updated", actor=actor, obj=mailing_list)
    return mailing_list


@transaction.atomic
def do_close_list(mailing_list: MailingList, *, actor) -> None:
    """Close a list: its subscriptions' retention clock ("list_closed") starts now."""
    mailing_list.closed_at = timezone.now()
    mailing_list.save(update_fields=["closed_at"])
    audit("list.closed", actor=actor, obj=mailing_list)
