"""The simulator: what would happen to this person if they entered the journey now (or at a
given time) — the steps, the mails with their rendered subjects, the times, and where consent
would stop them.  It reads and renders; it never writes, sends or enrols anyone.

Branches and consent are judged on the person as they are now; a wait moves the simulated clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.urls import reverse
from django.utils import timezone

from tidings.audience.models import Contact
from tidings.audience.tokens import absolute_url
from tidings.campaigns.rendering import MessageLinks

from .actions import MARKETING_PURPOSE, SERVICE_PURPOSE
from .engine import branch_matches
from .mail import StepError, compile_step, send_refusal
from .models import Journey
from .schedule import contact_zone, in_contact_zone, wait_ends
from .steps import WAITS, index_of, successors

MAX_STEPS = 100


@dataclass(frozen=True)
class Moment:
    at: datetime
    step: str
    kind: str
    what: str
    stops: bool = False


def simulate(
    journey: Journey,
    contact: Contact,
    *,
    start: datetime | None = None,
    days: int = 90,
) -> list[Moment]:
    # In UTC, as the engine counts: a local start plus "2 days" would be wall-clock days,
    # an hour out across a change of summer time.
    start = (start or timezone.now()).astimezone(UTC)
    until = start + timedelta(days=days)
    version = journey.current()
    if version is None:
        return []
    steps = version.steps
    harmless = absolute_url(reverse("public:preferences-link"))
    links = MessageLinks(unsubscribe_url=harmless, preferences_url=harmless, view_url="")
    now, step_id, out = start, steps[0]["id"], []
    for _ in range(MAX_STEPS):
        if not step_id:
            out.append(Moment(now, "", "end", "the journey ends"))
            break
        index = index_of(steps, step_id)
        step = steps[index]
        kind = step["kind"]
        following = successors(steps, index)[0]
        purpose = MARKETING_PURPOSE if journey.is_marketing else SERVICE_PURPOSE
        if kind in ("wait_event", "wait_click"):
            ends = wait_ends(step, now, contact, purpose, steps)
            what = f'"{step["event"]}"' if kind == "wait_event" else "a click"
            out.append(
                Moment(
                    now,
                    step_id,
                    kind,
                    f"waits until {_when(ends)} for {what} (simulated: it does not come)",
                )
            )
            if ends > until:
                out.append(Moment(ends, "", "horizon", f"beyond the {days} days simulated"))
                break
            now, step_id = ends, step["else"]
            continue
        if kind in WAITS:
            ends = wait_ends(step, now, contact, purpose, steps)
            theirs = _their_time(ends, contact, purpose, steps)
            out.append(Moment(now, step_id, kind, f"waits until {_when(ends)}{theirs}"))
            if ends > until:
                out.append(Moment(ends, "", "horizon", f"beyond the {days} days simulated"))
                break
            now, step_id = ends, following
            continue
        if kind == "send_email":
            refusal = send_refusal(journey, contact)
            if refusal:
                out.append(Moment(now, step_id, kind, f"would leave: {refusal}", stops=True))
                break
            try:
                subject = compile_step(journey, step).render(contact, links).subject
            except StepError as exc:
                out.append(Moment(now, step_id, kind, f"would fail: {exc}", stops=True))
                break
            out.append(Moment(now, step_id, kind, f'email "{subject}"'))
        elif kind == "branch":
            try:
                matches = branch_matches(step, contact, now)
            except StepError as exc:
                out.append(Moment(now, step_id, kind, f"would fail: {exc}", stops=True))
                break
            following = step["then"] if matches else step["else"]
            out.append(Moment(now, step_id, kind, f"matches: {'yes' if matches else 'no'}"))
        elif kind == "end":
            out.append(Moment(now, step_id, kind, "the journey ends"))
            break
        else:
            out.append(Moment(now, step_id, kind, _describe(step)))
        step_id = following
    else:  # a journey that loops through a wait goes on: say where the simulation stopped
        what = f"the simulation stops here, after {MAX_STEPS} steps (the journey goes on)"
        out.append(Moment(now, "", "horizon", what))
    return out


def _describe(step: dict[str, Any]) -> str:
    kind = step["kind"]
    if kind == "set_attribute":
        return f'sets {step["key"]} to "{step["value"]}"'
    if kind == "remove_attribute":
        return f"removes {step['key']}"
    if kind == "notify_operator":
        return f'notifies {step["to"]}: "{step["subject"]}"'
    if kind == "webhook":
        return f'calls the webhooks with "{step["event"]}"'
    return kind


def _their_time(moment: datetime, contact: Contact, purpose: str, steps: Any) -> str:
    """The person's own time of ``moment`` (", 09:00 in their zone (America/New_York)") when the
    journey counts in their zone and it is not the company's, whose time the simulator shows."""
    zone = contact_zone(contact, purpose) if in_contact_zone(steps) else None
    if zone is None or zone.key == timezone.get_current_timezone_name():
        return ""
    return f", {moment.astimezone(zone):%a %d %b %H:%M} in their zone ({zone.key})"


def _when(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%a %d %b %Y %H:%M %Z")


def timeline_text(moments: list[Moment]) -> str:
    return "\n".join(f"{_when(m.at)}  {m.step or '-':<12} {m.kind:<16} {m.what}" for m in moments)
