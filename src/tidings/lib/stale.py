"""Two tabs, or two people, editing one template or one draft campaign.

An edit page carries the version it was opened at (the row's ``updated_at``).  Saving over a
newer version is refused once, saying so, instead of silently replacing the other edit; the page
then carries the newer version, so pressing Save again keeps these edits on purpose.

This suits a record saved as one body (a template's blocks, a draft's content).  A form of many
independent fields (a contact, a CRM enquiry) uses ``lib/edits.py`` instead, which keeps both
operators' edits when they touched different fields.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model


def version_of(updated_at: datetime | None) -> str:
    """The version an edit page carries: the row's last save, to the microsecond."""
    return f"{updated_at.timestamp():.6f}" if updated_at else ""


class EditedMeanwhile(Exception):
    """Someone saved the row after this edit page was opened; ``current`` is its version now."""

    def __init__(self, what: str, current: str, by: str = "") -> None:
        self.current = current
        who = f" by {by}" if by else ""
        super().__init__(
            f"Not saved: this {what} was saved{who} after you opened it (in another tab or "
            "window, or by someone else). Saving now would replace those changes. Open it in a "
            "new tab to compare, or press Save again to keep your version."
        )


def check_version(
    loaded: str | None,
    updated_at: datetime | None,
    what: str,
    by: Callable[[], str] = lambda: "",
) -> None:
    """Raise EditedMeanwhile when the page was opened at another version than the row's
    (``loaded=None``: the caller does not say, as the API and older forms do not); ``by`` names
    who saved it, asked only then."""
    if loaded is None:
        return
    current = version_of(updated_at)
    if loaded != current:
        raise EditedMeanwhile(what, current, by())


def editor_name(user_id: int | None, actor: Any) -> str:
    """Who saved last, as the message names them: "you" (in another tab), or their username."""
    if user_id is None:
        return ""
    if user_id == getattr(actor, "pk", None):
        return "you"
    user = get_user_model().objects.filter(pk=user_id).first()
    return user.get_username() if user is not None else ""
