"""The journey drawn server-side as SVG: one box per step with its live counts, arrows to the
steps that follow (a branch's "yes" and "no").  No script; the page's CSP holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .stats import StepCounts
from .steps import successors

BOX_W, BOX_H, GAP, LEFT, TOP = 420, 64, 36, 40, 20

LABELS = {
    "send_email": "Send",
    "wait": "Wait",
    "wait_until": "Wait until",
    "wait_event": "Wait for event",
    "wait_click": "Wait for a click",
    "branch": "Branch",
    "set_attribute": "Set",
    "remove_attribute": "Remove",
    "notify_operator": "Notify",
    "webhook": "Webhook",
    "end": "End",
}


def _summary(step: Mapping[str, Any]) -> str:
    kind = step["kind"]
    if kind == "send_email":
        return f"{step.get('template', '')}: {step.get('subject') or '(template subject)'}"
    if kind == "wait":
        return str(step.get("duration", ""))
    if kind == "wait_until":
        days = ", ".join(step.get("weekdays") or []) or "any day"
        return f"{step.get('time', '')} ({days})"
    if kind == "branch":
        return str(step.get("segment", ""))
    if kind == "wait_event":
        return f"{step.get('event', '')}, at most {step.get('timeout', '')}"
    if kind == "wait_click":
        return f"{step.get('url') or 'any link'}, at most {step.get('timeout', '')}"
    if kind in ("set_attribute", "remove_attribute"):
        return f"{step.get('key', '')} {step.get('value', '')}".strip()
    if kind == "notify_operator":
        return str(step.get("subject", ""))
    if kind == "webhook":
        return str(step.get("event", ""))
    return ""


def _counts_line(counts: StepCounts | None) -> str:
    c = counts or StepCounts()
    parts = [f"{c.reached} reached", f"{c.waiting} here now"]
    if c.sent:
        parts.append(f"{c.sent} sent")
    if c.opened or c.clicked:
        parts.append(f"{c.opened} opened, {c.clicked} clicked")
    if c.exited:
        parts.append(f"{c.exited} left")
    if c.parked:
        parts.append(f"{c.parked} parked")
    return " · ".join(parts)


def journey_svg(
    steps: Sequence[Mapping[str, Any]], counts: Mapping[str, StepCounts], title: str
) -> str:
    n = len(steps)
    height = TOP * 2 + n * BOX_H + (n - 1) * GAP + 40
    width = LEFT + BOX_W + 200
    y_of = {step["id"]: TOP + i * (BOX_H + GAP) for i, step in enumerate(steps)}
    parts = [
        f'<svg class="journey-map" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
    ]
    for i, step in enumerate(steps):
        y = y_of[step["id"]]
        label = f"{LABELS.get(step['kind'], step['kind'])} · {step['id']}"
        summary = _summary(step)[:60]
        parts.append(
            f'<g class="step step-{escape(step["kind"])}" data-step="{escape(step["id"])}">'
            f'<rect x="{LEFT}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            'fill="#f6f7fb" stroke="#556"/>'
            f'<text x="{LEFT + 12}" y="{y + 20}" font-weight="bold">{escape(label)}</text>'
            f'<text x="{LEFT + 12}" y="{y + 38}">{escape(summary)}</text>'
            f'<text x="{LEFT + 12}" y="{y + 56}" font-size="12">'
            f"{escape(_counts_line(counts.get(step['id'])))}</text></g>"
        )
        targets = successors(steps, i)
        for j, target in enumerate(targets):
            if not target or target not in y_of:
                continue
            ty = y_of[target]
            if ty == y + BOX_H + GAP and step["kind"] not in ("branch", "wait_event", "wait_click"):
                x = LEFT + BOX_W / 2
                parts.append(
                    f'<line x1="{x}" y1="{y + BOX_H}" x2="{x}" y2="{ty}" stroke="#556" '
                    'marker-end="url(#arrow)"/>'
                )
                continue
            # Any other jump: a path round the right-hand side, labelled for a branch.
            offset = 30 + 40 * j
            x0 = LEFT + BOX_W
            parts.append(
                f'<path d="M{x0},{y + BOX_H / 2} H{x0 + offset} V{ty + BOX_H / 2} H{x0}" '
                'fill="none" stroke="#556" marker-end="url(#arrow)"/>'
            )
            if step["kind"] in ("branch", "wait_event", "wait_click"):
                word = ("yes", "no")[j] if step["kind"] == "branch" else ("came", "timeout")[j]
                parts.append(
                    f'<text x="{x0 + offset + 4}" y="{y + BOX_H / 2 - 4}" font-size="12">'
                    f"{word}</text>"
                )
    parts.append("</svg>")
    return "".join(parts)
