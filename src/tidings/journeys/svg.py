"""The journey drawn server-side as SVG: one box per step with its live counts, arrows to the
steps that follow (a branch's "yes" and "no").  No script; the page's CSP holds.

Every text is cut to what fits its box (the whole of it is the step's tooltip, ``<title>``), and
each arrow that jumps over steps runs in a lane of its own on the right, so two never share a
line; its label sits between the box and the first lane, where no line passes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .stats import StepCounts
from .steps import successors

BOX_W, GAP, LEFT, TOP = 440, 28, 8, 12
LANE0, LANE_GAP = 64, 16  # the first jump lane's distance from the boxes; between lanes
# Characters that fit a box's width (424 px) at each line's size, in a wide sans-serif font.
TITLE_CHARS, SUMMARY_CHARS, COUNT_CHARS = 44, 52, 58
TWO_WAYS = ("branch", "wait_event", "wait_click")

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


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _counts_lines(counts: StepCounts | None) -> list[str]:
    c = counts or StepCounts()
    mail = []
    if c.sent:
        mail.append(f"{c.sent} sent")
    if c.opened or c.clicked:
        mail.append(f"{c.opened} opened, {c.clicked} clicked")
    gone = [f"{c.exited} left"] if c.exited else []
    if c.parked:
        gone.append(f"{c.parked} parked")
    lines = [f"{c.reached} reached · {c.waiting} here now", " · ".join(mail), " · ".join(gone)]
    lines = [line for line in lines if line]
    if len(" · ".join(lines)) <= COUNT_CHARS:  # one line when it fits, else one for each kind
        return [" · ".join(lines)]
    return [_fit(line, COUNT_CHARS) for line in lines]


def _jumps(steps: Sequence[Mapping[str, Any]], y_of: Mapping[str, int], box_h: int) -> list[tuple]:
    """(from index, which way, target id) of every arrow that is not a straight step down."""
    jumps = []
    for i, step in enumerate(steps):
        for j, target in enumerate(successors(steps, i)):
            if not target or target not in y_of:
                continue
            if y_of[target] == y_of[step["id"]] + box_h + GAP and step["kind"] not in TWO_WAYS:
                continue
            jumps.append((i, j, target))
    return jumps


def journey_svg(
    steps: Sequence[Mapping[str, Any]], counts: Mapping[str, StepCounts], title: str
) -> str:
    n = len(steps)
    # Boxes as tall as the most lines of counts any step has (1 to 3).
    box_h = 64 + 16 * (max((len(_counts_lines(counts.get(s["id"]))) for s in steps), default=1) - 1)
    y_of = {step["id"]: TOP + i * (box_h + GAP) for i, step in enumerate(steps)}
    jumps = _jumps(steps, y_of, box_h)
    height = TOP * 2 + n * box_h + (n - 1) * GAP
    width = LEFT + BOX_W + LANE0 + LANE_GAP * max(len(jumps) - 1, 0) + 8
    parts = [
        f'<svg class="journey-map" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>',
    ]
    x0 = LEFT + BOX_W
    for i, step in enumerate(steps):
        y = y_of[step["id"]]
        label = f"{LABELS.get(step['kind'], step['kind'])} · {step['id']}"
        summary = _summary(step)
        lines = [
            f'<text x="{LEFT + 12}" y="{y + 20}" font-size="14" font-weight="bold">'
            f"{escape(_fit(label, TITLE_CHARS))}</text>"
        ]
        if summary:
            lines.append(
                f'<text class="summary" x="{LEFT + 12}" y="{y + 38}" font-size="13">'
                f"{escape(_fit(summary, SUMMARY_CHARS))}</text>"
            )
        for k, line in enumerate(_counts_lines(counts.get(step["id"]))):
            lines.append(
                f'<text x="{LEFT + 12}" y="{y + 56 + 16 * k}" font-size="12">{escape(line)}</text>'
            )
        parts.append(
            f'<g class="step step-{escape(step["kind"])}" data-step="{escape(step["id"])}">'
            f"<title>{escape(label)}{escape(': ' + summary if summary else '')}</title>"
            f'<rect x="{LEFT}" y="{y}" width="{BOX_W}" height="{box_h}" rx="8" '
            f'fill="#f6f7fb" stroke="#556"/>{"".join(lines)}</g>'
        )
        for target in successors(steps, i):
            ty = y_of.get(target)
            if ty == y + box_h + GAP and step["kind"] not in TWO_WAYS:
                x = LEFT + BOX_W / 2
                parts.append(
                    f'<line x1="{x}" y1="{y + box_h}" x2="{x}" y2="{ty}" stroke="#556" '
                    'marker-end="url(#arrow)"/>'
                )
    for lane, (i, j, target) in enumerate(jumps):
        step, y, ty = steps[i], y_of[steps[i]["id"]], y_of[target]
        two_ways = step["kind"] in TWO_WAYS
        # Out above the middle ("then", or a plain jump), or below it ("else"); in at the middle.
        sy = y + box_h / 2 + (12 if two_ways and j == 1 else -12)
        lx = x0 + LANE0 + LANE_GAP * lane
        parts.append(
            f'<path class="jump" d="M{x0},{sy} H{lx} V{ty + box_h / 2} H{x0}" '
            'fill="none" stroke="#556" marker-end="url(#arrow)"/>'
        )
        if two_ways:
            word = ("yes", "no")[j] if step["kind"] == "branch" else ("came", "timeout")[j]
            ly = sy - 3 if j == 0 else sy + 12
            parts.append(f'<text x="{x0 + 4}" y="{ly}" font-size="11">{word}</text>')
    parts.append("</svg>")
    return "".join(parts)
