"""Mail to operators about their work: a campaign that paused itself, a campaign or a journey
waiting for a second operator, a campaign sent back to draft by a change.  System mail from
``SERVER_EMAIL``, carrying a name and a link, never a person's data.

Each mail is of a ``Kind``, and an operator's own settings (the CRM's settings page,
*Notifications and rota*, registered here by the CRM through ``register_settings``: this
library sits below the apps and reads none of them) may switch a kind off.  ``Kind.SAFETY`` —
a campaign that paused itself because people complained or addresses bounced — cannot be
switched off: sending on regardless harms the whole installation's reputation, so its author
and the owners are always told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


class Kind(StrEnum):
    """What a mail to operators is about (the settings switch kinds off, never ``SAFETY``)."""

    #: another operator asks them to send or confirm a campaign or a journey, or a journey
    #: stopped until someone else confirms it
    CONFIRMATION = "confirmation"
    #: a campaign they wrote or confirmed went back to draft (or paused) because something it
    #: reads changed, and needs scheduling or confirming again
    SENT_BACK = "sent_back"
    #: a campaign paused itself for complaints or bounces: always sent
    SAFETY = "safety"


#: The kinds an operator may switch off.
OPTIONAL: frozenset[Kind] = frozenset({Kind.CONFIRMATION, Kind.SENT_BACK})

#: Reads the operators' settings: user ids → for each, the kinds they switched off (an operator
#: with no settings is missing from the answer and gets every kind).
SettingsReader = Callable[[Sequence[int]], dict[int, frozenset[str]]]
_readers: list[SettingsReader] = []


def register_settings(reader: SettingsReader) -> None:
    """Called by the app that keeps the operators' settings (the CRM's ``ready``)."""
    if reader not in _readers:
        _readers.append(reader)


def wanted(users: Iterable[Any], kind: Kind) -> list[Any]:
    """Those of ``users`` who are to get a mail of ``kind``: every one with an address, less
    those who switched the kind off (``SAFETY``: nobody may)."""
    chosen = [u for u in users if getattr(u, "email", "")]
    if kind not in OPTIONAL or not chosen:
        return chosen
    ids = [u.pk for u in chosen]
    off: set[int] = set()
    for reader in _readers:
        off.update(pk for pk, kinds in reader(ids).items() if kind in kinds)
    return [u for u in chosen if u.pk not in off]


def mail_operators(
    recipients: Iterable[Any], subject: str, message: str, *, about: str, kind: Kind
) -> int:
    """Send ``message`` to the operators ``recipients`` (users) who want mail of ``kind``; how
    many addresses were emailed.  A failure is logged (``about`` says what it was about) and
    answers 0: the page says the same either way, so the work it is about goes on."""
    addresses = sorted({u.email for u in wanted(recipients, kind)})
    if not addresses:
        return 0
    try:
        send_mail(
            subject=subject,
            message=message,
            from_email=settings.SERVER_EMAIL,
            recipient_list=addresses,
        )
    except Exception:
        logger.exception("could not email operators about %s", about)
        return 0
    return len(addresses)
