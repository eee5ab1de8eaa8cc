"""Reading the consent ledger: current state, send-time checks, proof for operators.

The ledger (``ConsentEvent``) is the only record of consent; every state here is *derived* from it
by replaying a contact's events in order.  The keys the product writes:

========================  =========  ============  ==========================================
purpose                   channel    mailing_list  meaning
========================  =========  ============  ==========================================
``newsletter``            email      the list      consent to that list (topic = list's topic)
``marketing``             email      —             email marketing as a whole; written as
                                                   *withdrawn* by "unsubscribe from everything"
                                                   and granted again when the person re-subscribes
``marketing``             phone/     —             consent to be contacted on that channel
                          post/sms
``newsletter.tracking``   email      —             open/click statistics (only when the policy's
                                                   newsletter purpose declares ``tracking``);
                                                   allowed unless the person refused
========================  =========  ============  ==========================================

A ``newsletter`` grant from a sign-up form (source ``form``) is a request awaiting confirmation
when the purpose uses double opt-in: the confirmation click adds a second grant (source
``confirmation``).  Whether mail may go out right now is ``may_email``, which also checks the
subscription row and the suppression list.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from tidings.lib.csv_export import safe_row
from tidings.policy import get_policy

from .models import ConsentEvent, Contact, Subscription
from .suppression import is_suppressed

PURPOSE_NEWSLETTER = "newsletter"
PURPOSE_MARKETING = "marketing"
PURPOSE_TRACKING = "newsletter.tracking"
CHANNEL_EMAIL = "email"

# Technical data that is captured, never typed into a form (the policy may still allow it).
CAPTURED_FIELDS = frozenset({"ip_address", "user_agent", "pages_visited"})

Key = tuple[str, str, int | None]  # (purpose, channel, mailing_list_id)


@dataclass(frozen=True)
class Standing:
    """The latest event for one key of the ledger."""

    action: str
    at: datetime
    source: str
    event_id: int

    @property
    def granted(self) -> bool:
        return self.action == ConsentEvent.Action.GRANTED

    def _order(self) -> tuple[datetime, int]:
        return (self.at, self.event_id)


@dataclass(frozen=True)
class ConsentState:
    """A contact's consent, replayed from the ledger."""

    entries: dict[Key, Standing] = field(default_factory=dict)

    def standing(
        self, purpose: str, channel: str = "", mailing_list_id: int | None = None
    ) -> Standing | None:
        return self.entries.get((purpose, channel, mailing_list_id))

    def list_granted(self, mailing_list_id: int) -> bool:
        """Consent to emails from this list: granted for the list, and not withdrawn since by
        "unsubscribe from everything" (a withdrawal of email marketing as a whole)."""
        own = self.standing(PURPOSE_NEWSLETTER, CHANNEL_EMAIL, mailing_list_id)
        if own is None or not own.granted:
            return False
        everything = self.standing(PURPOSE_MARKETING, CHANNEL_EMAIL)
        return not (
            everything is not None and not everything.granted and everything._order() > own._order()
        )

    def channel_granted(self, channel: str) -> bool:
        standing = self.standing(PURPOSE_MARKETING, channel)
        return standing is not None and standing.granted

    def tracking_refused(self) -> bool:
        standing = self.standing(PURPOSE_TRACKING, CHANNEL_EMAIL)
        return standing is not None and not standing.granted


def current_state(contact: Contact) -> ConsentState:
    """Replay the contact's ledger: the latest event per (purpose, channel, list) wins."""
    entries: dict[Key, Standing] = {}
    rows = (
        ConsentEvent.objects.filter(contact=contact)
        .order_by("at", "pk")
        .values_list("pk", "purpose", "channel", "mailing_list_id", "action", "at", "source")
    )
    for pk, purpose, channel, list_id, action, at, source in rows:
        entries[(purpose, channel, list_id)] = Standing(action, at, source, pk)
    return ConsentState(entries)


def tracking_enabled() -> bool:
    """Whether the policy's newsletter purpose tracks opens and clicks at all."""
    return bool(get_policy().purpose("newsletter").tracking)


def tracking_needs_consent() -> bool:
    """Whether the policy tracks only people who allowed it (opt-in) rather than all but those
    who refused (opt-out)."""
    return bool(get_policy().purpose("newsletter").tracking_needs_consent)


def tracking_allowed(contact: Contact) -> bool:
    """May opens and clicks of this contact's emails be recorded?  Only if the policy tracks, and
    then unless the person refused (the latest tracking event is a withdrawal) — or, when the
    policy needs consent for it, only if the latest tracking event is a grant."""
    if not tracking_enabled():
        return False
    latest = (
        ConsentEvent.objects.filter(contact=contact, purpose=PURPOSE_TRACKING)
        .order_by("-at", "-pk")
        .values_list("action", flat=True)
        .first()
    )
    if tracking_needs_consent():
        return latest == ConsentEvent.Action.GRANTED
    return latest != ConsentEvent.Action.WITHDRAWN


def tracked_contact_ids(contact_ids: Iterable[int]) -> set[int]:
    """Those of ``contact_ids`` whose emails may be tracked (``tracking_allowed`` for a batch:
    one query over the few ledger rows about tracking, for the delivery engine)."""
    ids = set(contact_ids)
    if not ids or not tracking_enabled():
        return set()
    latest: dict[int, str] = {}
    for contact_id, action in (
        ConsentEvent.objects.filter(contact_id__in=ids, purpose=PURPOSE_TRACKING)
        .order_by("at", "pk")
        .values_list("contact_id", "action")
    ):
        latest[contact_id] = action
    if tracking_needs_consent():
        return {c for c, action in latest.items() if action == ConsentEvent.Action.GRANTED}
    return {c for c in ids if latest.get(c) != ConsentEvent.Action.WITHDRAWN}


def ip_allowed() -> bool:
    """The policy lets the newsletter purpose keep IP addresses (in the ledger, as proof)."""
    policy = get_policy()
    return "ip_address" in policy.all_fields and "ip_address" in policy.fields_for("newsletter").all


def ledger_ip(ip: str | None) -> str | None:
    """The IP address to store with a consent event: ``ip`` if the policy allows it, else None."""
    return ip if ip and ip_allowed() else None


# --- sending ---------------------------------------------------------------------------------
def may_email(contact_id: int, mailing_list_id: int) -> bool:
    """May a message from this list go to this contact *now*?  The delivery engine asks at send
    time, so an unsubscribe takes effect even for a campaign that is already sending.

    Yes only for a confirmed subscription to an open list, at an address that is not suppressed.
    """
    email = (
        Subscription.objects.filter(
            contact_id=contact_id,
            mailing_list_id=mailing_list_id,
            status=Subscription.Status.CONFIRMED,
            mailing_list__closed_at__isnull=True,
        )
        .values_list("contact__email", flat=True)
        .first()
    )
    return email is not None and not is_suppressed(email)


# --- proof for operators ----------------------------------------------------------------------
PROOF_COLUMNS = (
    "when",
    "action",
    "purpose",
    "channel",
    "list",
    "topic",
    "source",
    "source_ref",
    "wording_sha256",
    "wording",
    "ip_address",
)


def proof_rows(contact: Contact) -> list[dict[str, str]]:
    """The contact's consent history, oldest first, one dict per event (keys: PROOF_COLUMNS)."""
    events = (
        ConsentEvent.objects.filter(contact=contact)
        .select_related("mailing_list", "wording")
        .order_by("at", "pk")
    )
    return [
        {
            "when": event.at.isoformat(),
            "action": event.action,
            "purpose": event.purpose,
            "channel": event.channel,
            "list": event.mailing_list.name if event.mailing_list else "",
            "topic": event.topic,
            "source": event.source,
            "source_ref": event.source_ref,
            "wording_sha256": event.wording.sha256 if event.wording else "",
            "wording": event.wording.text if event.wording else "",
            "ip_address": event.ip_address or "",
        }
        for event in events
    ]


def proof_table(contact: Contact) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the contact's consent proof, for ``web.csv_export.streamed_csv``."""
    return list(PROOF_COLUMNS), [[row[c] for c in PROOF_COLUMNS] for row in proof_rows(contact)]


def write_proof_csv(rows: Iterable[dict[str, str]], out: IO[str]) -> None:
    """Write proof rows as CSV (a header line, then one line per event) to a text stream.  Cells
    that a spreadsheet would run as a formula are neutralised (web.csv_export.safe_row)."""
    writer = csv.writer(out)
    writer.writerow(PROOF_COLUMNS)
    for row in rows:
        writer.writerow(safe_row(str(row.get(column, "")) for column in PROOF_COLUMNS))
