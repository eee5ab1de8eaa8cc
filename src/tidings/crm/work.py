"""Enquiries and support requests as work: status, owner, next action, notes.

Every change is a ``do_*`` action here: one transaction, a conditional update where two
operators could race, and an audit entry naming the fields that changed (never their values;
a status is a word of ours, not personal data, so the new status is named).  Statuses move
through one transition table per kind (``TRANSITIONS``), which raises ``WorkError`` for a move
it does not allow; views turn that into a message.

New work is assigned in turn (``assign_in_turn``) to the operators who take that kind of work
(``OperatorPreference``), oldest assignment first, under a row lock so two arrivals at once do
not land on the same person by accident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tidings.lib.access import has_permission, operators_with_permission
from tidings.lib.audit import audit
from tidings.lib.edits import conflicts
from tidings.policy.screening import load_engine

from .actions import CrmError, clean_free_text, kept_as_written
from .models import ConversationMessage, Enquiry, OperatorPreference, SupportRequest

WorkRecord = Enquiry | SupportRequest

E, R = Enquiry.Status, SupportRequest.Status
#: Which status each status may move to, per kind.  Closed work can be reopened.
TRANSITIONS: dict[type, dict[str, frozenset[str]]] = {
    Enquiry: {
        E.NEW: frozenset({E.OPEN, E.WAITING, E.WON, E.LOST}),
        E.OPEN: frozenset({E.WAITING, E.WON, E.LOST}),
        E.WAITING: frozenset({E.OPEN, E.WON, E.LOST}),
        E.WON: frozenset({E.OPEN}),
        E.LOST: frozenset({E.OPEN}),
    },
    SupportRequest: {
        R.HELD: frozenset({R.NEW, R.DECLINED}),
        R.NEW: frozenset({R.OPEN, R.WAITING, R.SOLVED}),
        R.OPEN: frozenset({R.WAITING, R.SOLVED}),
        R.WAITING: frozenset({R.OPEN, R.SOLVED}),
        R.SOLVED: frozenset({R.OPEN}),
        R.DECLINED: frozenset(),
    },
}
#: Statuses that are still work to do ("open" in the broad sense of the filters).
OPEN: dict[type, tuple[str, ...]] = {
    Enquiry: (E.NEW, E.OPEN, E.WAITING),
    SupportRequest: (R.NEW, R.OPEN, R.WAITING),
}
#: What "close" means for each kind in a bulk action.
CLOSE_AS: dict[type, str] = {Enquiry: E.LOST, SupportRequest: R.SOLVED}


class WorkError(CrmError):
    """A change of status (or owner) the rules do not allow; the message is for the operator."""


def kind_of(record: WorkRecord) -> str:
    return "enquiry" if isinstance(record, Enquiry) else "support_request"


def label_of(record: WorkRecord) -> str:
    return (
        f"enquiry #{record.pk}" if isinstance(record, Enquiry) else f"support request #{record.pk}"
    )


def operators() -> Any:
    """The operators work can be assigned to: active staff whose role lets them see the CRM's
    records (``people``); an analyst given an enquiry could not open it, yet would be emailed
    about it."""
    return (
        get_user_model().objects.filter(pk__in=_may_see_people().values("pk")).order_by("username")
    )


def _may_see_people() -> Any:
    return get_user_model().objects.filter(operators_with_permission("people"))


def _check_status(record: WorkRecord, status: str) -> None:
    allowed = TRANSITIONS[type(record)]
    if status not in allowed:
        raise WorkError(f'"{status}" is not a status of these records.')
    if status != record.status and status not in allowed[record.status]:
        current = type(record).Status(record.status).label
        wanted = type(record).Status(status).label
        raise WorkError(f'A record that is "{current}" cannot become "{wanted}".')


FIELD_NAMES = {"status": "status", "owner": "owner", "next_action_on": "next action date"}


def _pk(value: Any) -> Any:
    """An operator as their id (forms give users, records hold ids); anything else as it is."""
    return getattr(value, "pk", value)


def _check_owner(owner: Any) -> None:
    if owner is not None and not has_permission(owner, "people"):
        raise WorkError(
            "Work can only be assigned to an active operator whose role lets them see people."
        )


@transaction.atomic
def do_update_work(
    record: WorkRecord,
    *,
    actor: Any,
    status: str | None = None,
    owner: Any = ...,
    next_action_on: Any = ...,
    actor_label: str = "",
    seen: Mapping[str, Any] | None = None,
) -> list[str]:
    """Change what is given of status, owner (``None``: nobody) and next-action date; returns
    the fields that changed.  Raises WorkError for a move the transition table refuses, or an
    owner who is not an active operator.  The new owner is told (``notifications``) unless they
    made the change themselves.  ``seen``: what the given fields read when the operator opened
    the page; one someone else changed since raises WorkError naming it, and nothing is saved
    (else the stale page would quietly undo that change)."""
    from .notifications import notify_owner

    model = type(record)
    current = model.objects.select_for_update().get(pk=record.pk)
    if seen:
        asked = {"status": status, "owner": owner, "next_action_on": next_action_on}
        given = {
            k: _pk(v)
            for k, v in asked.items()
            if k in seen and v is not ... and not (k == "status" and v is None)
        }
        now = {
            "status": current.status,
            "owner": current.owner_id,
            "next_action_on": current.next_action_on,
        }
        clashes = conflicts(now, given, {k: _pk(v) for k, v in seen.items()})
        if clashes:
            names = ", ".join(FIELD_NAMES[c] for c in clashes)
            raise WorkError(
                f"Someone else changed the {names} since you opened this page, and nothing was "
                "saved: look again and retry."
            )
    values: dict[str, Any] = {}
    if status is not None and status != current.status:
        _check_status(current, status)
        values["status"] = status
        closing = status in model.CLOSED
        if closing != current.is_closed:
            values["closed_at"] = timezone.now() if closing else None
    if owner is not ... and getattr(owner, "pk", None) != current.owner_id:
        _check_owner(owner)
        values["owner"] = owner
    if next_action_on is not ... and next_action_on != current.next_action_on:
        values["next_action_on"] = next_action_on
    if not values:
        return []
    # Conditional on the status we read: a concurrent change (another operator, a reply coming
    # in) makes this one fail cleanly rather than overwrite it.
    changed = model.objects.filter(pk=record.pk, status=current.status).update(
        **values, updated_at=timezone.now()
    )
    if changed != 1:
        raise WorkError("Someone changed it at the same moment: look again and retry.")
    for name, value in values.items():
        setattr(record, name, value)
    record.status = values.get("status", current.status)
    fields = sorted(values)
    details: dict[str, Any] = {"fields": fields}
    if "status" in values:
        details["status"] = values["status"]
    audit(
        f"{kind_of(record)}.work_updated",
        actor=actor,
        actor_label=actor_label,
        obj=record,
        **details,
    )
    new_owner = values.get("owner")
    if new_owner is not None and new_owner != actor:
        notify_owner(record, "assigned", new_owner)
    return fields


@transaction.atomic
def do_bulk_update(
    records: Iterable[WorkRecord],
    *,
    actor: Any,
    owner: Any = ...,
    close: bool = False,
) -> tuple[int, list[str]]:
    """Assign (``owner``; None: nobody) and/or close several records at once, each through
    ``do_update_work`` (its own audit entry).  Returns (changed, problems): a record whose move
    is refused is left as it was and named in ``problems``; the others are changed."""
    changed, problems = 0, []
    for record in records:
        status = CLOSE_AS[type(record)] if close and not record.is_closed else None
        if close and record.status == SupportRequest.Status.HELD:
            status = SupportRequest.Status.DECLINED
        try:
            with transaction.atomic():
                if do_update_work(record, actor=actor, status=status, owner=owner):
                    changed += 1
        except WorkError as exc:
            problems.append(f"{label_of(record).capitalize()}: {exc}")
    return changed, problems


def do_add_note(record: WorkRecord, *, text: str, actor: Any) -> ConversationMessage:
    """An internal note on the record (never sent).  Screened like every free text; the
    engine is built before the transaction (on SQLite it holds the one write lock)."""
    load_engine()
    return _add_note(record, text=text, actor=actor)


@transaction.atomic
def _add_note(record: WorkRecord, *, text: str, actor: Any) -> ConversationMessage:
    cleaned, removed = clean_free_text(kept_as_written(text))
    if not cleaned.strip():
        raise WorkError("Write the note first.")
    note = ConversationMessage.objects.create(
        **{kind_of(record): record},
        direction=ConversationMessage.Direction.NOTE,
        author=actor if getattr(actor, "pk", None) else None,
        text=cleaned,
        redacted_categories=list(removed),
    )
    audit(f"{kind_of(record)}.noted", actor=actor, obj=record, redacted=len(removed))
    return note


# --- the rota ---------------------------------------------------------------------------------
def assign_in_turn(record: WorkRecord, *, now: Any = None) -> Any:
    """Give new work to the next operator in the rota for its kind; returns them (or None when
    nobody takes this kind of work).  Call inside the transaction that created ``record``."""
    takes = "takes_enquiries" if isinstance(record, Enquiry) else "takes_requests"
    candidate = (
        OperatorPreference.objects.select_for_update()
        .filter(user__in=_may_see_people().values("pk"), **{takes: True})
        .order_by(F("last_assigned_at").asc(nulls_first=True), "pk")
        .select_related("user")
        .first()
    )
    if candidate is None:
        return None
    now = now or timezone.now()
    OperatorPreference.objects.filter(pk=candidate.pk).update(last_assigned_at=now)
    type(record).objects.filter(pk=record.pk).update(owner=candidate.user)
    record.owner = candidate.user
    audit(f"{kind_of(record)}.work_updated", actor_label="rota", obj=record, fields=["owner"])
    return candidate.user


@transaction.atomic
def do_set_preferences(user: Any, values: Mapping[str, Any]) -> list[str]:
    """An operator's own CRM settings (how they are told, which work they take)."""
    preference, _ = OperatorPreference.objects.get_or_create(user=user)
    changed = [
        name
        for name in (
            "notify",
            "mail_confirmations",
            "mail_sent_back",
            "takes_enquiries",
            "takes_requests",
        )
        if name in values and getattr(preference, name) != values[name]
    ]
    for name in changed:
        setattr(preference, name, values[name])
    if changed:
        preference.save(update_fields=[*changed, "updated_at"])
        audit("operator.crm_preferences", actor=user, obj=preference, fields=changed)
    return changed
