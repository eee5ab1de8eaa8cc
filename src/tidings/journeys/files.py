"""Journeys as code: a journey written as TOML, exported and loaded (``tidings journeys``).

The format (every key but ``steps`` has a default)::

    name = "Welcome"
    topic = "product news"        # a marketing topic of the policy; "" for service messages
    sender = "news@example.com"   # a verified sender's address; absent: the default From
    entry = "once"                # once | one_at_a_time | again_after
    entry_days = 0                # for again_after

    [trigger]
    kind = "confirmed"    # confirmed | event | date | enquiry_created | demo_booked |
                          # link_clicked | form_submitted | segment_matched | manual
    # event: name = "trial_started";  date: field = "contract_end", days = -30
    # date on an attribute: field = "attributes.birthday", days = -7, yearly = true
    # segment_matched: segment = <saved segment id>
    # confirmed: list = <list id> (absent: any list of the topic)
    # link_clicked: campaign = <campaign id>, url = "https://…" (absent: any link)
    # form_submitted: form = <sign-up form id>

    [[steps]]
    id = "hello"
    kind = "send_email"
    template = "Welcome"
    subject = "Welcome, {{ contact.first_name }}"

    [[steps]]
    id = "pause"
    kind = "wait"
    duration = "2 days"

    [[goals]]
    name = "booked a demo"
    event = "demo_booked"

A file is checked like the policy: every problem with its key path (``steps[1].kind: unknown
step 'teleport'``), nothing saved unless all is well.  Loading a journey that exists (same name)
edits it, which makes a new version if its steps or goals changed.
"""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w

from tidings.campaigns.models import Sender

from .actions import JourneyNotReady, JourneySpec, Problem, do_create_journey, do_update_journey
from .models import Journey

TOP = {"name", "topic", "sender", "entry", "entry_days", "trigger", "steps", "goals"}


class JourneyFileError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


def export_journey(journey: Journey) -> str:
    version = journey.current()
    data: dict[str, Any] = {"name": journey.name, "topic": journey.topic}
    if journey.sender is not None:
        data["sender"] = journey.sender.email
    data["entry"] = journey.entry
    if journey.entry_days:
        data["entry_days"] = journey.entry_days
    data["trigger"] = {"kind": journey.trigger, **journey.trigger_params}
    data["steps"] = list(version.steps) if version else []
    if version and version.goals:
        data["goals"] = list(version.goals)
    return tomli_w.dumps(data)


def read_toml(text: str) -> dict[str, Any]:
    """A journey file's (or the editor's steps box's) TOML; ValueError saying what is wrong.
    Arrays or tables nested thousands deep exhaust the parser's recursion: refused as such."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ValueError("not valid TOML: nested too deeply") from None


def parse(text: str) -> JourneySpec:
    """The spec a file describes; raises JourneyFileError with key paths."""
    try:
        data = read_toml(text)
    except ValueError as exc:
        raise JourneyFileError([Problem(str(exc))]) from None
    problems = [Problem("unknown key", key) for key in data if key not in TOP]
    trigger = data.get("trigger", {"kind": "manual"})
    if not isinstance(trigger, dict) or not isinstance(trigger.get("kind"), str):
        problems.append(Problem('expected a table with a "kind"', "trigger"))
        trigger = {"kind": ""}
    sender_id = None
    if "sender" in data:
        sender = Sender.objects.filter(email=str(data["sender"]), verified=True).first()
        if sender is None:
            problems.append(Problem("no verified sender has that address", "sender"))
        else:
            sender_id = sender.pk
    for key, kind in (("name", str), ("topic", str), ("entry", str), ("entry_days", int)):
        if key in data and not isinstance(data[key], kind):
            problems.append(Problem(f"expected {'text' if kind is str else 'a number'}", key))
    if problems:
        raise JourneyFileError(problems)
    params = {k: v for k, v in trigger.items() if k != "kind"}
    return JourneySpec(
        name=data.get("name", ""),
        topic=data.get("topic", ""),
        trigger=trigger["kind"],
        trigger_params=params,
        entry=data.get("entry", Journey.Entry.ONCE),
        entry_days=data.get("entry_days", 0),
        steps=data.get("steps", []),
        goals=data.get("goals", []),
        sender_id=sender_id,
    )


def load_journey(text: str, *, actor: Any = None) -> tuple[Journey, bool]:
    """Create or edit the journey the file describes: (journey, created)."""
    spec = parse(text)
    existing = Journey.objects.filter(name=spec.name.strip()).first()
    try:
        if existing is None:
            return do_create_journey(spec, actor=actor), True
        return do_update_journey(existing, spec, actor=actor), False
    except JourneyNotReady as exc:
        raise JourneyFileError(exc.problems) from None
