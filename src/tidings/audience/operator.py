"""Actions operators take on contacts and lists (merged into actions.py once it settles)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from tidings import signals
from tidings.lib.audit import audit
from tidings.lib.edits import EditConflict, conflicts
from tidings.lib.text import clean_line, one_line
from tidings.policy import get_policy

from .actions import FieldNotAllowed, announce_unsubscribed, wording
from .emails import normalise_email
from .forms import field_label
from .models import ConsentEvent, Contact, MailingList, Segment, Subscription
from .operator_forms import contact_fields
from .subscriptions import do_set_subscription_status


def required_contact_fields() -> tuple[str, ...]:
    """The contact's fields the policy requires (the newsletter purpose's, as its sign-up forms
    and the preference centre ask for them).  The one rule for every correction — the
    operator's edit page, the API, a rights request: a required field may change, never be
    emptied."""
    try:
        return tuple(get_policy().fields_for("newsletter").required)
    except KeyError:  # a policy without the newsletter purpose requires nothing here
        return ()


def emptied_error(name: str) -> str:
    """What a correction that empties required field ``name`` is told (no value in it)."""
    return f"{field_label(name)} cannot be left empty: write the correct one"


class RequiredFieldEmptied(ValueError):
    """A correction would empty a field the policy requires (``field``); nothing was written."""

    def __init__(self, name: str) -> None:
        self.field = name
        super().__init__(emptied_error(name))


@transaction.atomic
def do_rectify_contact(
    contact: Contact,
    values: Mapping[str, str],
    *,
    allowed: Iterable[str],
    actor: Any = None,
    audit_unchanged: bool = False,
    seen: Mapping[str, Any] | None = None,
    **audit_details: Any,
) -> list[str]:
    """The one writer of a contact's own fields (audit action ``contact.rectified``): the
    operator's edit page, the API and a rights request's correction all call it.

    Only ``allowed`` names may be given (FieldNotAllowed names the others); the row is locked
    while it changes; an email address is normalised (InvalidEmail).  Returns the names that
    changed, in ``allowed``'s order; the audit entry lists them, never the old or new values
    (written only when something changed, unless ``audit_unchanged``).  ``seen``: what each
    field read when the editor opened its page; a field someone else changed since raises
    EditConflict (naming the fields) and nothing is written; emptying a field the policy
    requires (``required_contact_fields``) raises RequiredFieldEmptied, and nothing is written."""
    order = list(allowed)
    unknown = sorted(set(values) - set(order))
    if unknown:
        raise FieldNotAllowed(f"these fields cannot be changed here: {', '.join(unknown)}")
    required = required_contact_fields()
    emptied = [n for n in order if n in required and n in values and not _filled(values[n])]
    if emptied:
        raise RequiredFieldEmptied(emptied[0])
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    if seen:
        clashes = conflicts({n: getattr(locked, n) for n in values}, values, seen)
        if clashes:
            raise EditConflict(clashes)
    changed = []
    for name in order:
        if name not in values:
            continue
        value: Any
        if name == "email":
            value = normalise_email(values[name])
        elif name in Contact.ONE_LINE_FIELDS:  # a line break a text box cannot show: a space
            value = one_line(clean_line(values[name]))
        else:
            value = clean_line(values[name])
        if getattr(locked, name) != value:
            setattr(locked, name, value)
            setattr(contact, name, value)
            changed.append(name)
    if changed:
        locked.save(update_fields=[*changed, "updated_at"])
    if changed or audit_unchanged:
        audit("contact.rectified", actor=actor, obj=locked, fields=sorted(changed), **audit_details)
    return changed


def _filled(value: Any) -> bool:
    """Is there anything in ``value`` once invisible format characters and spaces go?"""
    return bool(str(clean_line(value) or "").strip())


def do_update_contact(
    contact: Contact,
    values: Mapping[str, str],
    *,
    actor: Any,
    seen: Mapping[str, Any] | None = None,
) -> list[str]:
    """An operator's (or an API token's) correction: any field the policy lets us hold."""
    return do_rectify_contact(contact, values, allowed=contact_fields(), actor=actor, seen=seen)


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
    """Unsubscribe contacts from a list (their consent is recorded as withdrawn by an operator,
    ``source_ref`` "user:<id>").  Once committed it has the effects of the person's own
    unsubscribe: they leave every journey and webhooks say ``contact.unsubscribed``, for the
    whole batch at once (``announce_unsubscribed``)."""
    now = timezone.now()
    subs = list(
        Subscription.objects.filter(
            mailing_list=mailing_list, contact_id__in=set(contact_ids)
        ).exclude(status=Subscription.Status.UNSUBSCRIBED)
    )
    do_set_subscription_status(subs, Subscription.Status.UNSUBSCRIBED, at=now)
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
        announce_unsubscribed(sorted(s.contact_id for s in subs), mailing_list.pk)
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
    if not created:
        _audience_changed(f"its list “{mailing_list.name}”", actor)
    return mailing_list


@transaction.atomic
def do_close_list(mailing_list: MailingList, *, actor) -> None:
    """Close a list: its subscriptions' retention clock ("list_closed") starts now."""
    mailing_list.closed_at = timezone.now()
    mailing_list.save(update_fields=["closed_at"])
    audit("list.closed", actor=actor, obj=mailing_list)


# --- segments ---------------------------------------------------------------------------------
@transaction.atomic
def do_save_segment(form: Any, *, actor: Any) -> Segment:
    """Save a valid segment form; a new segment remembers who made it."""
    segment: Segment = form.save(commit=False)
    created = segment.pk is None
    if segment.created_by_id is None:
        segment.created_by = actor
    segment.save()
    audit("segment.saved", actor=actor, obj=segment)
    if not created:
        _audience_changed(f"its segment “{segment.name}”", actor)
    return segment


def _audience_changed(what: str, actor: Any) -> None:
    # Inside the transaction: a campaign confirmed with the old rule is voided with the save.
    signals.audience_changed.send(sender=Segment, what=what, actor_id=getattr(actor, "pk", None))


@transaction.atomic
def do_delete_segment(segment: Segment, *, actor: Any) -> None:
    audit("segment.deleted", actor=actor, obj=segment)
    name = segment.name
    segment.delete()
    _audience_changed(f"its segment “{name}” (deleted)", actor)
