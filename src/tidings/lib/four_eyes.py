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
