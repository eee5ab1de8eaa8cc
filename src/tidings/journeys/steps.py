"""The steps of a journey: their shape, and the checks a version must pass.

A version's steps are a list of dicts, each with an ``id`` (unique, short), a ``kind`` and the
kind's fields; ``next`` names the step that follows (default: the next in the list; the last
step's default is the end).  Kinds::

    send_email      template (a saved template's name), subject, preheader
    wait            duration: "3 days", "2 hours", "30 minutes", "1 week"
    wait_until      time "09:00" in the company's time zone (TIME_ZONE); weekdays ["mon", ...];
                    zone "contact": in the person's time zone where the policy lets us hold it
                    (their time_zone field), else the company's
    wait_event      event (a custom event's name), timeout ("3 days"), then (it came) / else
    wait_click      timeout, then (the person clicked a link in this journey's mail; ``url``:
                    that link only) / else
    branch          segment (a segment condition), then / else: step ids
    set_attribute   key, value          remove_attribute  key
    notify_operator to (an operator's address), subject
    webhook         event (a name sent to the outgoing webhooks as journey.step)
    end

``validate`` returns every problem as ``(key path, message)``: ``steps[2].template``.  A cycle
that does not pass through a wait is refused (it would spin), and so is a template that does not
exist, and a journey of more than ``MAX_STEPS`` steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

KINDS: dict[str, dict[str, bool]] = {
    # field -> required
    "send_email": {"template": True, "subject": False, "preheader": False},
    "wait": {"duration": True},
    "wait_until": {"time": True, "weekdays": False, "zone": False},
    "wait_event": {"event": True, "timeout": True, "then": True, "else": True},
    "wait_click": {"timeout": True, "then": True, "else": True, "url": False},
    "branch": {"segment": True, "then": True, "else": True},
    "set_attribute": {"key": True, "value": True},
    "remove_attribute": {"key": True},
    "notify_operator": {"to": True, "subject": True},
    "webhook": {"event": True},
    "end": {},
}
WAITS = {"wait", "wait_until", "wait_event", "wait_click"}
MAX_STEPS = 500  # a journey people can follow; also bounds the loop check's depth
TWO_WAYS = ("branch", "wait_event", "wait_click")
ZONES = ("company", "contact")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_DURATION = re.compile(r"^\s*(\d{1,4})\s*(minute|hour|day|week)s?\s*$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400}


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def duration_parts(text: Any) -> tuple[int, str]:
    """("3 days" ->) (3, "day"): the count and its unit (minute, hour, day, week)."""
    match = _DURATION.match(str(text).lower()) if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError('expected a duration such as "3 days", "2 hours" or "1 week"')
    return int(match.group(1)), match.group(2)


def parse_duration(text: Any) -> timedelta:
    """The duration as elapsed time (a day = 24 hours): for checking and ordering.  When a wait
    ends is schedule.add_duration's, which counts days on the calendar."""
    count, unit = duration_parts(text)
    return timedelta(seconds=count * _UNITS[unit])


def parse_time(text: Any) -> time:
    match = _TIME.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError('expected a time of day such as "09:00"')
    return time(int(match.group(1)), int(match.group(2)))


def step_ids(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(s.get("id", "")) for s in steps]


def successors(steps: Sequence[Mapping[str, Any]], index: int) -> list[str]:
    """The ids a step may lead to ("" is the end)."""
    step = steps[index]
    kind = step.get("kind")
    if kind == "end":
        return [""]
    if kind in TWO_WAYS:
        return [str(step.get("then", "")), str(step.get("else", ""))]
    if "next" in step:
        return [str(step["next"])]
    return [str(steps[index + 1].get("id", ""))] if index + 1 < len(steps) else [""]


def validate(
    steps: Any,
    goals: Any = (),
    *,
    templates: set[str] | None = None,
    segment_problems: Any = None,
) -> list[Problem]:
    """Every problem with a version's ``steps`` and ``goals``; [] when it may be saved.

    ``templates``: the names of the saved templates (None: not checked).
    ``segment_problems``: a function (text) -> list of messages, for branch conditions."""
    problems: list[Problem] = []
    if not isinstance(steps, list) or not steps:
        return [Problem("steps", "a journey needs at least one step")]
    if len(steps) > MAX_STEPS:
        return [Problem("steps", f"a journey has at most {MAX_STEPS} steps")]
    ids: dict[str, int] = {}
    for i, step in enumerate(steps):
        path = f"steps[{i}]"
        if not isinstance(step, Mapping):
            problems.append(Problem(path, "expected a table with an id and a kind"))
            continue
        sid = step.get("id")
        if not isinstance(sid, str) or not _ID.match(sid):
            problems.append(
                Problem(f"{path}.id", "expected a short id: lower-case letters, digits, - and _")
            )
        elif sid in ids:
            problems.append(Problem(f"{path}.id", f'"{sid}" is used by steps[{ids[sid]}] too'))
        else:
            ids[sid] = i
        kind = step.get("kind")
        if kind not in KINDS:
            problems.append(
                Problem(f"{path}.kind", f"unknown step {kind!r}; one of: {', '.join(KINDS)}")
            )
            continue
        fields = KINDS[kind]
        for name in step:
            if name not in (*fields, "id", "kind", "next"):
                problems.append(Problem(f"{path}.{name}", f"a {kind} step has no such field"))
        for name, required in fields.items():
            value = step.get(name)
            if required and (value is None or (isinstance(value, str) and not value.strip())):
                problems.append(Problem(f"{path}.{name}", "required"))
        problems += _check_fields(step, path, templates, segment_problems)
    if problems:
        return problems
    for i, step in enumerate(steps):
        for j, target in enumerate(successors(steps, i)):
            if target and target not in ids:
                two_ways = step["kind"] in TWO_WAYS
                name = ("then", "else")[j] if two_ways else "next"
                problems.append(Problem(f"steps[{i}].{name}", f'no step has the id "{target}"'))
    if problems:
        return problems
    problems += _cycles(steps, ids)
    problems += _check_goals(goals)
    return problems


def _check_fields(
    step: Mapping[str, Any], path: str, templates: set[str] | None, segment_problems: Any
) -> list[Problem]:
    kind, problems = step["kind"], []
    try:
        if kind == "wait" and step.get("duration") is not None:
            parse_duration(step["duration"])
        if kind in ("wait_event", "wait_click") and step.get("timeout") is not None:
            try:
                parse_duration(step["timeout"])
            except ValueError as exc:
                raise ValueError(str(exc)) from None
        if kind == "wait_until" and step.get("time") is not None:
            parse_time(step["time"])
    except ValueError as exc:
        field = {"wait": "duration", "wait_event": "timeout", "wait_click": "timeout"}.get(
            kind, "time"
        )
        problems.append(Problem(f"{path}.{field}", str(exc)))
    if kind == "wait_until" and "weekdays" in step:
        days = step["weekdays"]
        if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
            problems.append(
                Problem(f"{path}.weekdays", f"expected a list of: {', '.join(WEEKDAYS)}")
            )
    if kind == "wait_until" and "zone" in step and step["zone"] not in ZONES:
        problems.append(Problem(f"{path}.zone", f"expected one of: {', '.join(ZONES)}"))
    if kind == "send_email" and templates is not None:
        name = step.get("template")
        if isinstance(name, str) and name.strip() and name not in templates:
            problems.append(Problem(f"{path}.template", f'no template is called "{name}"'))
    if kind == "branch" and segment_problems is not None and isinstance(step.get("segment"), str):
        problems += [Problem(f"{path}.segment", m) for m in segment_problems(step["segment"])]
    if kind == "wait_click" and "url" in step:
        url = step["url"]
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            problems.append(Problem(f"{path}.url", "expected a link's full address (https://…)"))
    for name in ("subject", "preheader", "value", "to", "event", "key", "template", "segment"):
        if name in step and not isinstance(step[name], str):
            problems.append(Problem(f"{path}.{name}", "expected text"))
    return problems


def _cycles(steps: Sequence[Mapping[str, Any]], ids: dict[str, int]) -> list[Problem]:
    """A loop of steps none of which waits would run for ever without time passing."""
    edges = {
        i: [ids[t] for t in successors(steps, i) if t]
        for i, step in enumerate(steps)
        if step["kind"] not in WAITS
    }
    state: dict[int, int] = {}  # 1: on the path, 2: done

    def visit(node: int) -> int | None:
        state[node] = 1
        for nxt in edges.get(node, []):
            if nxt not in edges:  # a wait: the loop waits, fine
                continue
            if state.get(nxt) == 1:
                return nxt
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        state[node] = 2
        return None

    for start in edges:
        if start not in state:
            found = visit(start)
            if found is not None:
                return [
                    Problem(f"steps[{found}]", "a loop through this step never waits: add a wait")
                ]
    return []


def _check_goals(goals: Any) -> list[Problem]:
    if not goals:
        return []
    if not isinstance(goals, list):
        return [Problem("goals", "expected a list of goals")]
    problems = []
    for i, goal in enumerate(goals):
        if not isinstance(goal, Mapping):
            problems.append(Problem(f"goals[{i}]", "expected a table with a name and an event"))
            continue
        for name in goal:
            if name not in ("name", "event"):
                problems.append(Problem(f"goals[{i}].{name}", "a goal has no such field"))
        for name in ("name", "event"):
            if not isinstance(goal.get(name), str) or not goal[name].strip():
                problems.append(Problem(f"goals[{i}].{name}", "required"))
    return problems


def index_of(steps: Sequence[Mapping[str, Any]], step_id: str) -> int:
    for i, step in enumerate(steps):
        if step.get("id") == step_id:
            return i
    raise KeyError(step_id)


def sends(steps: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for s in steps if s.get("kind") == "send_email"]
