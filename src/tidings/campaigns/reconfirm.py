"""Four-eyes sending: a change to what a confirmed campaign reads voids its confirmation.

Called by the actions that save what campaigns read when they go out (layouts, templates, and
through ``signals.audience_changed`` segments and lists), inside their transaction, so the
campaign's change commits or rolls back with the edit.  Only with
``TIDINGS_SEND_NEEDS_SECOND_OPERATOR``; see ``campaigns.fingerprint`` for what is compared.

A campaign whose confirmation is voided:

- scheduled → back to draft, with the reason on its page; it is sent only once another operator
  with the send permission confirms it again;
- sending → paused, with the reason; resuming it confirms the change, so it needs another
  operator too (``lifecycle.do_resume``);
- paused → stays paused, with the reason, under the same rule: resuming it now needs another
  operator, which whoever paused it would not otherwise learn until they try.

In each case whoever made the change becomes its last editor (so they cannot be the second
operator) and an audit row ``campaign.confirmation_voided`` names what changed; its author and
whoever confirmed it are emailed what changed (``sent_back``) — a paused one's the first time
only, not again at each later change while it stays paused and voided.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from tidings.lib.audit import audit
from tidings.lib.four_eyes import VOIDED_END, is_voided, voided_reason

from .fingerprint import changed_since_confirmed, enforced
from .lifecycle import InvalidTransition, apply_transition
from .models import Campaign
from .sent_back import tell_on_commit

Status = Campaign.Status
_LIVE = (Status.SCHEDULED, Status.SENDING, Status.PAUSED)


def void_changed_confirmations(what: str, *, actor: Any) -> list[int]:
    """Void the confirmation of every live campaign whose content (or, while scheduled, whose
    audience rule) no longer matches what was confirmed; ``what`` names the change for the
    page ("its layout “Footer”").  Returns the ids of the campaigns voided."""
    if not enforced():
        return []
    voided = []
    live = Campaign.objects.filter(status__in=_LIVE).select_related(
        "sender", "layout", "template__layout"
    )
    for campaign in live:
        was = campaign.status
        if not changed_since_confirmed(campaign, audience=was == Status.SCHEDULED):
            continue
        reason = voided_reason(what, VOIDED_END)
        editor = actor if getattr(actor, "pk", None) else None
        scheduled_at = campaign.scheduled_at
        # A paused one already voided (and its people told) is not told again at each change.
        told = campaign.status == Status.PAUSED and is_voided(campaign.paused_reason)
        for _attempt in range(3):  # the worker may start or pause it under us: follow it
            try:
                was = _void(campaign, reason, editor)
            except InvalidTransition as exc:
                if exc.status not in _LIVE:
                    break  # cancelled or finished meanwhile: nothing to void
                campaign.status = exc.status
                continue
            voided.append(campaign.pk)
            audit("campaign.confirmation_voided", actor=actor, obj=campaign, was=was, cause=what)
            if not (was == Status.PAUSED and told):
                tell_on_commit(
                    campaign,
                    reason,
                    was=was,
                    scheduled_at=scheduled_at,
                    confirm=True,
                    changed_by=editor,
                )
            break
    return voided


def _void(campaign: Campaign, reason: str, editor: Any) -> str:
    """Take the campaign out of the way as its state requires; returns that state."""
    status = campaign.status
    if status == Status.SCHEDULED:
        apply_transition(
            campaign, "unschedule", scheduled_at=None, paused_reason=reason, last_edited_by=editor
        )
    elif status == Status.SENDING:
        apply_transition(campaign, "pause", paused_reason=reason, last_edited_by=editor)
    else:
        changed = Campaign.objects.filter(pk=campaign.pk, status=Status.PAUSED).update(
            paused_reason=reason, last_edited_by=editor, updated_at=timezone.now()
        )
        if changed != 1:
            now = Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()
            raise InvalidTransition(now, "pause")
    return status


def on_audience_changed(
    sender: Any, *, what: str, actor_id: int | None = None, **kwargs: Any
) -> None:
    """``signals.audience_changed``: a segment or a list was saved (inside its transaction)."""
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    void_changed_confirmations(what, actor=actor)
