"""Merging two contacts into one: everything that points at the dropped one moves to the kept one.

Two contacts can be one person: the upgrade to case-folded address keys kept ``zoë@`` and
``ZOË@`` apart (audience migration 0011, listed by `tidings doctor` as ``contacts.addresses``),
or an operator knows two addresses are one person's.  ``do_merge_contacts(keep, drop)``:

- moves every row of every model that points at ``drop`` to ``keep``.  Each relation to Contact
  is registered here with how it merges (``register_merger``): most rows are simply re-pointed;
  rows under a unique constraint with the contact (one subscription per list, one delivery per
  campaign, one open enrolment per journey...) have their app's own rule.  A relation to Contact
  that no app registered refuses the merge before anything changes (``MergeNotSupported``), and
  a test fails for it (tests/audience/test_merge.py);
- re-points the consent ledger's rows (their ``contact_id``, the one change to the ledger a
  merge makes: the events, their times and words stay as they were), and the audit log's and
  other JSON references to ``drop`` (``register_after_merge``);
- fills ``keep``'s empty fields from ``drop`` (never overwriting), merges attributes (keep's
  win), recomputes the engagement facts, then deletes ``drop``.

Allowed when the two addresses have the same ``email_key`` (one mailbox), or, with
``different_addresses=True``, when an operator merges two different addresses: then ``keep``'s
address stays and ``drop``'s is on no list any more (its subscriptions move to ``keep``'s
address).  One transaction; both people locked in id order; one audit row with ids and counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction

from tidings.lib.audit import audit
from tidings.lib.models import AuditEntry

from .actions import lock_person
from .emails import email_key
from .models import ConsentEvent, Contact, PendingPreferences, Subscription
from .sources import _relations, key_in


# --- errors -------------------------------------------------------------------------------------
class MergeError(Exception):
    """A domain error about merging contacts; ``str()`` is a sentence for the operator (ids
    only, never an address)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MergeNotSupported(MergeError):
    """A relation to Contact has no registered merge rule: merging would leave rows behind."""


# --- the register -------------------------------------------------------------------------------
@dataclass
class Merge:
    """What one merge did, as it goes: counts per relation, and rows of other models that were
    folded into their twin (old id -> new id), for JSON references to follow."""

    keep: Contact
    drop: Contact
    counts: dict[str, int] = field(default_factory=dict)
    folded: dict[str, dict[int, int]] = field(default_factory=dict)

    def count(self, name: str, n: int) -> None:
        if n:
            self.counts[name] = self.counts.get(name, 0) + n


# (model, field) -> rows merged; None: re-point every row (no unique constraint involves it).
Merger = Callable[[Merge], int]
_MERGERS: dict[tuple[str, str], Merger | None] = {}
_AFTER: dict[str, Callable[[Merge], int]] = {}


def register_merger(
    model: type[models.Model], field_name: str = "contact", merge: Merger | None = None
) -> None:
    """How rows of ``model`` pointing at a contact (by ``field_name``) merge: ``merge(m)``, or
    None to re-point them all (only for a field in no unique constraint)."""
    _MERGERS[(model._meta.label, field_name)] = merge


def register_after_merge(name: str, step: Callable[[Merge], int]) -> None:
    """A step run after the rows moved and before ``drop`` goes: references that are no foreign
    key (JSON ids), derived facts.  Returns a count for the audit row."""
    _AFTER[name] = step


def relations() -> list[tuple[type[models.Model], str]]:
    """Every (model, field) pointing at Contact."""
    return [(rel.related_model, rel.field.name) for rel in _relations()]


def unsupported() -> list[str]:
    """Relations to Contact with no registered merge rule (should be none)."""
    return [
        f"{model._meta.label}.{name}"
        for model, name in relations()
        if (model._meta.label, name) not in _MERGERS
    ]


def repoint(model: type[models.Model], field_name: str, m: Merge) -> int:
    """Every row of ``model`` pointing at ``drop`` now points at ``keep`` (plain QuerySet: the
    consent ledger's append-only manager refuses updates; a merge re-points, nothing else)."""
    rows: models.QuerySet[Any] = models.QuerySet(model).filter(**{field_name: m.drop.pk})
    return rows.update(**{field_name: m.keep.pk})


def fold_into(model: type[models.Model], loser: int, winner: int, m: Merge) -> None:
    """Row ``loser`` of ``model`` is the same as ``winner`` now: what points at it moves to
    ``winner`` (rows under no unique constraint with the pointer), then it is deleted."""
    from .sources import pointing_relations

    for _rel, related, column in pointing_relations(model):
        models.QuerySet(related).filter(**{column: loser}).update(**{column: winner})
    models.QuerySet(model).filter(pk=loser).delete()
    m.folded.setdefault(model._meta.label, {})[loser] = winner


# --- subscriptions ------------------------------------------------------------------------------
_ENDED = {
    Subscription.Status.UNSUBSCRIBED,
    Subscription.Status.BOUNCED,
    Subscription.Status.COMPLAINED,
}


def _latest_decision(contact_ids: list[int], mailing_list_id: int) -> str | None:
    """The ledger's latest decision about email to this list (or to all marketing) of these
    contacts: "granted", "withdrawn", or None."""
    event = (
        ConsentEvent.objects.filter(
            models.Q(purpose="newsletter", mailing_list_id=mailing_list_id)
            | models.Q(purpose="marketing", mailing_list=None),
            contact_id__in=contact_ids,
            channel="email",
        )
        .order_by("-at", "-pk")
        .first()
    )
    return event.action if event is not None else None


def _winner(a: Subscription, b: Subscription, decision: str | None) -> Subscription:
    """Which of two subscriptions of one person to one list stays.

    Never resurrect an unsubscribe: between a live one (confirmed, pending) and an ended one
    (unsubscribed, bounced, complained) the later consent decision in the ledger wins (with
    none, the ended one).  Two confirmed: the earlier confirmed (its consent is the older).
    Otherwise: confirmed over pending, the later decision between two ended ones."""
    a_ended, b_ended = a.status in _ENDED, b.status in _ENDED
    if a_ended != b_ended:
        ended, live = (a, b) if a_ended else (b, a)
        if decision == "granted" and live.status == Subscription.Status.CONFIRMED:
            return live
        return ended
    if a_ended:  # both ended: the later word stands
        return max(a, b, key=lambda s: (s.unsubscribed_at or s.updated_at, s.pk))
    confirmed = [s for s in (a, b) if s.status == Subscription.Status.CONFIRMED]
    if len(confirmed) == 2:
        return min(confirmed, key=lambda s: (s.confirmed_at or s.created_at, s.pk))
    if confirmed:
        return confirmed[0]
    return min(a, b, key=lambda s: (s.created_at, s.pk))


def merge_subscriptions(m: Merge) -> int:
    kept = {s.mailing_list_id: s for s in Subscription.objects.filter(contact=m.keep)}
    moved = 0
    for sub in Subscription.objects.filter(contact=m.drop).order_by("pk"):
        mine = kept.get(sub.mailing_list_id)
        if mine is None:
            moved += Subscription.objects.filter(pk=sub.pk).update(contact=m.keep)
            continue
        decision = _latest_decision([m.keep.pk, m.drop.pk], sub.mailing_list_id)
        winner = _winner(mine, sub, decision)
        loser = sub if winner is mine else mine
        Subscription.objects.filter(pk=loser.pk).delete()
        if winner is sub:
            Subscription.objects.filter(pk=sub.pk).update(contact=m.keep)
        m.count("subscriptions_dropped", 1)
        moved += 1
    return moved


register_merger(Subscription, "contact", merge_subscriptions)


def merge_consent_events(m: Merge) -> int:
    """The ledger's rows of ``drop`` now name ``keep``: the only change a merge makes to the
    ledger (times, actions, words and sources stay as they were recorded)."""
    # One chain, so that the ledger's guard (tests/audience/test_consent_ledger.py) sees it.
    return models.QuerySet(ConsentEvent).filter(contact_id=m.drop.pk).update(contact_id=m.keep.pk)


register_merger(ConsentEvent, "contact", merge_consent_events)


def merge_pending_preferences(m: Merge) -> int:
    """What ``drop``'s preference page left waiting for a confirmation click goes: the email's
    link names ``drop``, which the merge deletes, so it could never be confirmed; ``keep``'s own
    waiting changes (one row a person) stay.  Nothing was granted by it, so nothing is lost."""
    deleted = models.QuerySet(PendingPreferences).filter(contact_id=m.drop.pk).delete()[0]
    m.count("pending_preferences_dropped", deleted)
    return deleted


register_merger(PendingPreferences, "contact", merge_pending_preferences)


# --- the audit log ------------------------------------------------------------------------------
def _repoint_json(
    queryset: models.QuerySet[Any], field_name: str, key: str, mapping: dict[int, int]
) -> int:
    rows = list(queryset.filter(key_in(field_name, key, list(mapping))).only("pk", field_name))
    for row in rows:
        data = dict(getattr(row, field_name))
        old = data.get(key)
        if isinstance(old, int) and old in mapping:
            data[key] = mapping[old]
        setattr(row, field_name, data)
    queryset.bulk_update(rows, [field_name], batch_size=500)
    return len(rows)


def repoint_json(m: Merge, queryset: models.QuerySet[Any], field_name: str, keys: dict) -> int:
    """JSON references in ``queryset``'s ``field_name``: ``keys`` maps a JSON key to "contact"
    or to a model label whose folded rows it names (``{"delivery": "campaigns.Delivery"}``)."""
    changed = 0
    for key, what in keys.items():
        mapping = {m.drop.pk: m.keep.pk} if what == "contact" else m.folded.get(what, {})
        if mapping:
            changed += _repoint_json(queryset, field_name, key, mapping)
    return changed


def merge_audit_log(m: Merge) -> int:
    """The audit log's entries about ``drop`` name ``keep`` (as erasure forgets them, the log's
    other documented exception to append-only): so the access package and a later erasure of
    the merged person find them."""
    entries: models.QuerySet[AuditEntry] = models.QuerySet(AuditEntry)
    changed = entries.filter(object_type="audience.contact", object_id=str(m.drop.pk)).update(
        object_id=str(m.keep.pk)
    )
    return changed + repoint_json(
        m, entries, "details", {"contact": "contact", "delivery": "campaigns.Delivery"}
    )


register_after_merge("activity_log", merge_audit_log)


# --- the contact's own fields -------------------------------------------------------------------
def _fill_fields(keep: Contact, drop: Contact) -> list[str]:
    changed = [f for f in Contact.COLUMN_FIELDS if f != "email" and not getattr(keep, f)]
    changed = [f for f in changed if getattr(drop, f)]
    for name in changed:
        setattr(keep, name, getattr(drop, name))
    if drop.last_contact_at and (
        not keep.last_contact_at or drop.last_contact_at > keep.last_contact_at
    ):
        keep.last_contact_at = drop.last_contact_at
        changed.append("last_contact_at")
    if drop.created_at < keep.created_at:
        keep.created_at = drop.created_at
        changed.append("created_at")
    extra = {k: v for k, v in (drop.attributes or {}).items() if k not in (keep.attributes or {})}
    if extra:
        keep.attributes = {**extra, **(keep.attributes or {})}
        changed.append("attributes")
    return changed


def check_merge(keep: Contact, drop: Contact, different_addresses: bool) -> None:
    """Raise MergeError when ``drop`` may not be merged into ``keep``."""
    if keep.pk == drop.pk:
        raise MergeError("a contact cannot be merged with itself")
    if email_key(keep.email) != email_key(drop.email) and not different_addresses:
        raise MergeError(
            f"contacts #{keep.pk} and #{drop.pk} have different addresses: merge them only if "
            "they are one person's, explicitly (the kept address stays; the other goes on no "
            "list)"
        )
    missing = unsupported()
    if missing:
        raise MergeNotSupported(
            "these records of a contact have no merge rule, so nothing was merged: "
            + ", ".join(missing)
        )


def twins_of(contact: Contact) -> list[Contact]:
    """The other contacts with ``contact``'s address once case is folded: the one holding the
    key and those the upgrade kept apart (audience migration 0011), oldest first."""
    found = [
        *Contact.objects.with_email(contact.email)[:1],
        *Contact.objects.kept_apart(contact.email),
    ]
    return sorted({c.pk: c for c in found if c.pk != contact.pk}.values(), key=lambda c: c.pk)


def plan(keep: Contact, drop: Contact) -> dict[str, int]:
    """What a merge would move: per relation, the rows of ``drop`` (counts only)."""
    out = {}
    for model, name in relations():
        n = models.QuerySet(model).filter(**{name: drop.pk}).count()
        if n:
            out[f"{model._meta.label_lower}.{name}"] = n
    return out


@transaction.atomic
def do_merge_contacts(
    keep: Contact, drop: Contact, *, actor: Any, different_addresses: bool = False
) -> Merge:
    """Merge ``drop`` into ``keep`` (see the module's docstring); returns what moved.

    Raises MergeError when it is not allowed (the same contact, different addresses without
    ``different_addresses``, a contact gone) and MergeNotSupported when a relation to Contact
    has no merge rule; nothing changes then."""
    locked = {}
    for pk in sorted({keep.pk, drop.pk}):
        locked[pk] = lock_person(pk)
    if keep.pk == drop.pk:
        raise MergeError("a contact cannot be merged with itself")
    if locked[keep.pk] is None or locked[drop.pk] is None:
        gone = keep.pk if locked[keep.pk] is None else drop.pk
        raise MergeError(f"contact #{gone} no longer exists")
    keep, drop = locked[keep.pk] or keep, locked[drop.pk] or drop
    check_merge(keep, drop, different_addresses)
    m = Merge(keep, drop)
    for model, name in relations():
        merger = _MERGERS[(model._meta.label, name)]
        n = repoint(model, name, m) if merger is None else merger(m)
        m.count(f"{model._meta.label_lower}.{name}", n)
    for name, step in _AFTER.items():
        m.count(name, step(m))
    left = plan(keep, drop)
    if left:  # a merger that missed rows: refuse rather than lose them with the contact
        raise MergeError("records of the dropped contact were left behind: " + ", ".join(left))
    changed = _fill_fields(keep, drop)
    Contact.objects.filter(pk=drop.pk).delete()
    if keep.email_key is None:  # a contact kept apart keeps the address now it is alone
        keep.email_key = email_key(keep.email)
        changed.append("email_key")
    if changed:
        keep.save(update_fields=[*changed, "updated_at"])
    audit(
        "contact.merged",
        actor=actor,
        obj=keep,
        contact=keep.pk,
        merged=drop.pk,
        different_addresses=different_addresses,
        fields_filled=len([f for f in changed if f != "email_key"]),
        moved=dict(sorted(m.counts.items())),
    )
    return m
