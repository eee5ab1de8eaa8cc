"""Four-eyes sending (``TIDINGS_SEND_NEEDS_SECOND_OPERATOR``): the parts campaigns and journeys
share.

Both confirm what they send as a hash of its parts (``campaigns.fingerprint``,
``journeys.fingerprint``), compared again when they go out or are changed; both refuse the
confirmation to whoever made what is confirmed.  What goes into each hash, and what a voided
confirmation does to a campaign or a journey, stays with each app.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from django.conf import settings


def enforced() -> bool:
    """Whether sending needs a second operator, and a change after confirmation voids it."""
    return bool(getattr(settings, "TIDINGS_SEND_NEEDS_SECOND_OPERATOR", False))


def digest(parts: Any) -> str:
    """A stable SHA-256 of JSON-able ``parts`` (keys sorted; anything else as ``str``)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def needs_second_operator(actor: Any, authors: Iterable[int | None]) -> bool:
    """With four-eyes on: True when ``actor`` may not confirm because they are one of the
    ``authors`` (user ids of whoever wrote or changed it), or is no operator at all (the CLI, the
    worker).  The API's tokens act for their operator, so the same holds there."""
    if not enforced():
        return False
    actor_id = getattr(actor, "pk", None)
    return actor_id is None or actor_id in set(authors)


def voided_reason(what: str, end: str, *, limit: int = 300) -> str:
    """``"<what> <end>"`` within ``limit`` characters (the paused reason's column): a long
    ``what`` (a name of up to 200 characters, in words) is shortened with "…", never ``end``,
    which says what to do next — and by which the journeys' waiting list knows a voided one."""
    room = limit - len(end) - 1
    if len(what) > room:
        closing = "”" if what.endswith("”") else ""
        what = what[: room - 1 - len(closing)].rstrip() + "…" + closing
    return f"{what} {end}"


# A reason stored before ``voided_reason`` was cut at the column's 300 characters, so the end
# could be gone in part (``… another operator must co``).  How many characters of `` <end>``
# must remain for the cut reason to be known as a voided one: fewer could be any text's end.
_KNOWN_BY = len(" changed ")


# How a paused reason ends when a change voided the confirmation (campaigns and journeys).
VOIDED_END = "changed after it was confirmed: another operator must confirm it again"


def shown_reason(reason: str, end: str = VOIDED_END, *, limit: int = 300) -> str:
    """A paused reason as the page shows it.  One of the old reasons cut at ``limit`` loses
    nothing it still has: when what remains ends in the first words of ``end`` (a fixed
    sentence of ours), the rest of that sentence is put back — what changed was kept whole;
    any other reason cut at ``limit`` is shown with "…" so nobody reads it as complete.
    Nothing stored is rewritten, and nothing is made up: only ``end`` is completed."""
    if len(reason) < limit or reason.endswith(end):
        return reason
    tail = " " + end
    for k in range(len(tail) - 1, _KNOWN_BY - 1, -1):
        if reason.endswith(tail[:k]):
            return reason[:-k] + tail
    return reason.rstrip() + "…"


def is_voided(reason: str, end: str = VOIDED_END, *, limit: int = 300) -> bool:
    """The reason says a change voided the confirmation (also an old one cut at ``limit``)."""
    return shown_reason(reason, end, limit=limit).endswith(end)
