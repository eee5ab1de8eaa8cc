"""The bulk-sender checklist: what Gmail, Yahoo and Microsoft require of anyone sending them
thousands of messages a day (since 2024), each item green or red from this installation's data.

=============================  =================================================================
item                           green when
=============================  =================================================================
authentication                 every sender used in the last 30 days (or, with none, every
                               verified sender) passes SPF, DKIM, DMARC alignment and reverse DNS
                               (its last domain check; "could not check" is amber, never red)
one-click unsubscribe          every campaign message of the last 30 days carried List-Unsubscribe
                               and List-Unsubscribe-Post (the engine adds both to each one) with an
                               https link (``TIDINGS_BASE_URL``): receivers ignore http
unsubscribes honoured          no campaign message went to anyone more than 2 days after they
                               withdrew consent, measured from the consent ledger: the longest gap
                               between a withdrawal and a later message of that list or topic
complaint rate                 under 0.1% of campaign messages delivered in the last 30 days
                               (amber to 0.3%, red above: where receivers block), overall and
                               for Gmail, Yahoo and Microsoft's own domains
=============================  =================================================================

Each item is a ``ChecklistItem`` with its figures and, when not green, what to do.  The dashboard
shows it (``campaigns/deliverability/_checklist.html``); the send confirmation lists its red
items.  All the queries are aggregates over the last 30 days' rows (no personal data leaves them).

The dashboard shows a snapshot (``dashboard_checklist``, ``lib/snapshots.py``): at millions of
deliveries the 30 days' aggregates take seconds.  The worker retakes it every ``REFRESH`` (the
periodic job ``campaigns.bulk-checklist``); without a worker the dashboard recounts a snapshot
older than ``STALE_AFTER``; a sender's domain check drops it, so a fixed DNS record shows at
once.  The send confirmation and the deliverability page count live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db.models import Count, Q
from django.tasks import task
from django.utils import timezone

from tidings.audience.consent import CHANNEL_EMAIL, PURPOSE_MARKETING, PURPOSE_NEWSLETTER
from tidings.audience.models import ConsentEvent
from tidings.lib import snapshots

from ..models import Campaign, Delivery, Event, EventKind, Sender
from .health import FAIL, PASS

GREEN, AMBER, RED = "green", "amber", "red"
DAYS = 30
HONOUR_LIMIT = timedelta(days=2)
COMPLAINT_WARN, COMPLAINT_ALARM = 0.001, 0.003
SNAPSHOT_KEY = "bulk-sender-checklist"
REFRESH = timedelta(minutes=5)
STALE_AFTER = timedelta(minutes=15)

# Receiving domains the providers' own rules are about (addresses are stored in lower case).
PROVIDERS: dict[str, Q] = {
    "Gmail": Q(contact__email__endswith="@gmail.com")
    | Q(contact__email__endswith="@googlemail.com"),
    "Yahoo": Q(contact__email__regex=r"@(yahoo|ymail|rocketmail|aol)\.[a-z.]+$"),
    "Microsoft": Q(contact__email__regex=r"@(outlook|hotmail|live|msn)\.[a-z.]+$"),
}


@dataclass
class ChecklistItem:
    key: str
    title: str
    status: str  # GREEN | AMBER | RED
    summary: str
    fix: str = ""
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (label, figure, status)


@dataclass
class Checklist:
    items: list[ChecklistItem]
    since: datetime

    @property
    def red(self) -> list[ChecklistItem]:
        return [i for i in self.items if i.status == RED]


def bulk_sender_checklist(now: datetime | None = None) -> Checklist:
    now = now or timezone.now()
    since = now - timedelta(days=DAYS)
    return Checklist(
        [
            authentication_item(since),
            one_click_item(since),
            honoured_item(since),
            complaint_item(since),
        ],
        since,
    )


def _to_json(checklist: Checklist) -> dict:
    return {
        "since": checklist.since.isoformat(),
        "items": [
            {**item.__dict__, "rows": [list(row) for row in item.rows]} for item in checklist.items
        ],
    }


def _from_json(data: dict) -> Checklist:
    items = [
        ChecklistItem(**{**item, "rows": [tuple(row) for row in item["rows"]]})
        for item in data["items"]
    ]
    return Checklist(items, datetime.fromisoformat(data["since"]))


def dashboard_checklist() -> Checklist:
    """The checklist as the dashboard shows it: the snapshot (see the module docstring)."""
    kept = snapshots.read(
        SNAPSHOT_KEY, lambda: _to_json(bulk_sender_checklist()), max_age=STALE_AFTER
    )
    return _from_json(kept.data)


@task()
def take_checklist_snapshot() -> str:
    """The periodic job ``campaigns.bulk-checklist``: the dashboard's checklist, counted now."""
    snapshots.take(SNAPSHOT_KEY, lambda: _to_json(bulk_sender_checklist()))
    return SNAPSHOT_KEY


def forget_checklist_snapshot() -> None:
    snapshots.forget(SNAPSHOT_KEY)


def authentication_item(since: datetime, senders: list[Sender] | None = None) -> ChecklistItem:
    if senders is None:
        used = Campaign.objects.filter(started_at__gte=since, sender__isnull=False).values(
            "sender_id"
        )
        senders = list(Sender.objects.filter(pk__in=used)) or list(
            Sender.objects.filter(verified=True)
        )
    if not senders:
        return ChecklistItem(
            "authentication",
            "SPF, DKIM and DMARC",
            AMBER,
            "No sender yet.",
            "Add a sender under Campaigns → Senders; its domain is checked at once.",
        )
    rows = []
    for sender in senders:
        status = {PASS: GREEN, FAIL: RED}.get(sender.health_status, AMBER)
        figure = {
            PASS: "passes",
            FAIL: "fails: " + ", ".join(_failed_labels(sender)),
            "unknown": "could not be checked",
        }.get(sender.health_status, "never checked")
        rows.append((sender.domain, figure, status))
    worst = (
        RED
        if any(r[2] == RED for r in rows)
        else AMBER
        if any(r[2] == AMBER for r in rows)
        else GREEN
    )
    summary = {
        GREEN: "Every sending domain passes SPF, DKIM, DMARC alignment and reverse DNS.",
        AMBER: "Some sending domains have not been checked (or could not be).",
        RED: "A sending domain fails a check receivers require.",
    }[worst]
    fix = (
        "Open Campaigns → Senders: each failed check says which DNS record to publish."
        if worst != GREEN
        else ""
    )
    return ChecklistItem("authentication", "SPF, DKIM and DMARC", worst, summary, fix, rows)


def _failed_labels(sender: Sender) -> list[str]:
    checks = (sender.health or {}).get("checks", [])
    return [c["label"] for c in checks if c.get("required") and c.get("status") == FAIL]


def one_click_item(since: datetime) -> ChecklistItem:
    sent = Delivery.objects.filter(status=Delivery.Status.SENT, sent_at__gte=since).count()
    https = settings.TIDINGS_BASE_URL.lower().startswith("https://")
    scheme = settings.TIDINGS_BASE_URL.split(":")[0]
    messages = f"{sent:,} campaign message{'s' if sent != 1 else ''}"
    if not https:
        # A new installation has sent nothing yet: say what its messages will carry.
        said = (
            f"Unsubscribe links will start with {scheme}://"
            if not sent
            else f"The {messages} of the last {DAYS} days carried List-Unsubscribe and "
            f"List-Unsubscribe-Post, but their link starts with {scheme}://"
        )
        return ChecklistItem(
            "one_click",
            "One-click unsubscribe",
            RED,
            f"{said}: Gmail and Yahoo offer one-click unsubscribe only for https links.",
            "Serve tidings over https and set TIDINGS_BASE_URL to its https:// address.",
        )
    return ChecklistItem(
        "one_click",
        "One-click unsubscribe",
        GREEN,
        f"All {messages} of the last {DAYS} days carried an https List-Unsubscribe link and "
        "List-Unsubscribe-Post (RFC 8058)."
        if sent
        else "Every campaign message will carry an https List-Unsubscribe link and "
        "List-Unsubscribe-Post (RFC 8058).",
    )


def honoured_item(since: datetime) -> ChecklistItem:
    """The longest time from a withdrawal of consent (ledger) to a later campaign message of the
    same list or topic (or of any, after "unsubscribe from everything")."""
    withdrawals = list(
        ConsentEvent.objects.filter(
            action=ConsentEvent.Action.WITHDRAWN,
            at__gte=since - HONOUR_LIMIT,
            contact__isnull=False,
        )
        # Leaving a list (newsletter), or email marketing as a whole; not tracking consent.
        .filter(
            Q(purpose=PURPOSE_NEWSLETTER, mailing_list__isnull=False)
            | Q(purpose=PURPOSE_MARKETING, channel=CHANNEL_EMAIL)
        )
        .values_list("contact_id", "at", "mailing_list_id", "mailing_list__topic", "topic")
    )
    worst = timedelta(0)
    if withdrawals:
        contact_ids = {w[0] for w in withdrawals}
        later = Delivery.objects.filter(
            contact_id__in=contact_ids,
            status=Delivery.Status.SENT,
            sent_at__gte=min(w[1] for w in withdrawals),
        ).values_list("contact_id", "sent_at", "campaign__topic", "campaign_id")
        by_contact: dict[int, list[tuple[datetime, str, int]]] = {}
        for contact_id, sent_at, topic, campaign_id in later.iterator(chunk_size=5000):
            if sent_at is not None:  # always set on sent rows
                by_contact.setdefault(contact_id, []).append((sent_at, topic, campaign_id))
        list_campaigns = _campaign_lists({c for rows in by_contact.values() for _, _, c in rows})
        for contact_id, at, list_id, list_topic, topic in withdrawals:
            for sent_at, campaign_topic, campaign_id in by_contact.get(contact_id, []):
                if sent_at <= at:
                    continue
                everything = list_id is None and not topic
                same_list = list_id is not None and list_id in list_campaigns.get(campaign_id, ())
                covers = everything or same_list or (list_topic or topic) == campaign_topic
                if covers:
                    worst = max(worst, sent_at - at)
    hours = worst.total_seconds() / 3600
    if worst == timedelta(0):
        return ChecklistItem(
            "honoured",
            "Unsubscribes honoured within 2 days",
            GREEN,
            f"Nobody got a campaign message after unsubscribing (last {DAYS} days, "
            f"{len(withdrawals)} withdrawals in the consent ledger).",
        )
    status = GREEN if worst <= HONOUR_LIMIT else RED
    return ChecklistItem(
        "honoured",
        "Unsubscribes honoured within 2 days",
        status,
        f"At most {hours:.1f} hours passed between an unsubscribe and the last campaign message "
        "that still reached that person (measured from the consent ledger).",
        ""
        if status == GREEN
        else "A message went out more than two days after an unsubscribe: check imports and "
        "API clients that re-subscribe people, and campaigns started long after they were "
        "scheduled.",
    )


def _campaign_lists(campaign_ids: set[int]) -> dict[int, set[int]]:
    through = Campaign.lists.through
    found: dict[int, set[int]] = {}
    for campaign_id, list_id in through.objects.filter(campaign_id__in=campaign_ids).values_list(
        "campaign_id", "mailinglist_id"
    ):
        found.setdefault(campaign_id, set()).add(list_id)
    return found


def complaint_rate_status(rate: float) -> str:
    return GREEN if rate < COMPLAINT_WARN else AMBER if rate < COMPLAINT_ALARM else RED


def complaint_item(since: datetime) -> ChecklistItem:
    delivered = Delivery.objects.filter(status=Delivery.Status.SENT, sent_at__gte=since)
    complaints = Event.objects.filter(kind=EventKind.COMPLAINT, at__gte=since)
    sent_counts = delivered.aggregate(
        total=Count("pk"), **{name: Count("pk", filter=q) for name, q in PROVIDERS.items()}
    )
    complaint_counts = complaints.aggregate(
        total=Count("delivery_id", distinct=True),
        **{
            name: Count("delivery_id", distinct=True, filter=_via_delivery(q))
            for name, q in PROVIDERS.items()
        },
    )
    rows = []
    for name in ("total", *PROVIDERS):
        sent, complained = sent_counts[name], complaint_counts[name]
        rate = complained / sent if sent else 0.0
        label = "All receivers" if name == "total" else name
        rows.append(
            (
                label,
                f"{rate:.2%} ({complained} of {sent})" if sent else "nothing sent",
                complaint_rate_status(rate) if sent else GREEN,
            )
        )
    worst = (
        RED
        if any(r[2] == RED for r in rows)
        else AMBER
        if any(r[2] == AMBER for r in rows)
        else GREEN
    )
    summary = {
        GREEN: f"Under 0.1% of the last {DAYS} days' messages were reported as spam.",
        AMBER: "Above the 0.1% receivers ask for somewhere; still under the 0.3% they block at.",
        RED: "At or above 0.3% somewhere: Gmail and Yahoo start rejecting mail at this rate.",
    }[worst]
    fix = (
        "Send only to people who asked recently, make unsubscribing obvious, and remove people "
        "who never open (a follow-up or a segment like not opened_in(180d))."
        if worst != GREEN
        else ""
    )
    return ChecklistItem("complaints", "Complaint rate", worst, summary, fix, rows)


def _via_delivery(condition: Q) -> Q:
    """``PROVIDERS``' conditions (on a Delivery's contact) as conditions on an Event."""
    clauses = []
    for child in condition.children:
        if isinstance(child, Q):
            clauses.append(_via_delivery(child))
        else:
            lookup, value = cast(tuple[str, Any], child)
            clauses.append(Q(**{f"delivery__{lookup}": value}))
    combined = clauses[0]
    for clause in clauses[1:]:
        combined = combined | clause if condition.connector == Q.OR else combined & clause
    return ~combined if condition.negated else combined
