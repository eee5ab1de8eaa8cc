"""Reading the work: "My work" and the queue filters.  Plain queries, testable without HTTP.

The counts on "My work" count open work only (new, open, waiting), which the partial and
composite indexes on status, owner and next-action date answer without reading closed records;
the lists page by id (keyset), never counting the table (``audience.contacts.keyset_page``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from .models import Contract, ConversationMessage, Enquiry, SupportRequest
from .work import OPEN

PREVIEW = 10  # records listed under each heading of "My work"


def open_work(model: type[Enquiry] | type[SupportRequest]) -> QuerySet:
    return model.objects.filter(status__in=OPEN[model])


def _related(model: type[Enquiry] | type[SupportRequest], qs: QuerySet) -> QuerySet:
    if model is Enquiry:
        return qs.select_related("contact", "owner")
    return qs.select_related("organisation", "support_contact__contact", "owner")


def filter_work(
    model: type[Enquiry] | type[SupportRequest],
    records: QuerySet,
    *,
    status: str = "",
    owner: str = "",
    user: Any = None,
) -> QuerySet:
    """``status``: one status, "open" (every status still to do), "closed", or "" (all);
    ``owner``: "me", "none" (unassigned), an operator's id, or "" (anyone)."""
    if status == "open":
        records = records.filter(status__in=OPEN[model])
    elif status == "closed":
        records = records.filter(status__in=model.CLOSED)
    elif status:
        records = records.filter(status=status)
    if owner == "me" and user is not None:
        records = records.filter(owner=user)
    elif owner == "none":
        records = records.filter(owner__isnull=True)
    elif owner.isdigit():
        records = records.filter(owner_id=int(owner))
    return records


@dataclass
class Heading:
    key: str
    title: str
    count: int
    items: list[Any] = field(default_factory=list)
    link: str = ""  # the query string of the full list
    list_name: str = ""  # its URL name


@dataclass
class MyWork:
    today: date
    headings: list[Heading]
    renewals: list[tuple[Contract, int]]  # (contract, days until it ends)


def _heading(
    key: str, title: str, model: Any, qs: QuerySet, link: str, order: tuple[str, ...] = ("-pk",)
) -> Heading:
    from .conversations import with_thread_subjects

    records = with_thread_subjects(_with_changed_at(model, _related(model, qs)))
    items = list(records.order_by(*order)[:PREVIEW])
    for item in items:
        item.shown_subject = shown_subject(item)
    count = len(items) if len(items) < PREVIEW else qs.count()
    list_name = "crm:enquiries" if model is Enquiry else "crm:support-requests"
    return Heading(key, title, count, items, link, list_name)


def _with_changed_at(model: Any, qs: QuerySet) -> QuerySet:
    """``changed_at``: when the record last changed: its work or text, a mail or note in its
    conversation, or (an enquiry) the last time we were in touch."""
    kind = "enquiry" if model is Enquiry else "support_request"
    latest = (
        ConversationMessage.objects.filter(**{kind: OuterRef("pk")})
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    stamps = ["updated_at", *(["last_contact_at"] if model is Enquiry else [])]
    return qs.annotate(changed_at=Greatest(*stamps, Coalesce(Subquery(latest), "updated_at")))


def shown_subject(record: Any) -> str:
    """What a work item is about, to tell it from the others: its subject (screened when it was
    kept; an enquiry by the form has the subject of our first mail), else the start of its
    message (screened too)."""
    from .conversations import thread_subject

    subject = thread_subject(record)
    if subject or not isinstance(record, Enquiry):
        return subject or record.subject
    text = " ".join(record.message.split())
    return text if len(text) <= 80 else text[:79] + "…"


def my_work(user: Any, today: date | None = None) -> MyWork:
    """The operator's landing page: their open work, what is due today and overdue, new work
    nobody has, held requests, first responses missed, and contracts ending soon."""
    today = today or timezone.localdate()
    now = timezone.now()
    headings = []
    for model, name in ((Enquiry, "enquiries"), (SupportRequest, "support requests")):
        work = open_work(model)
        mine = work.filter(owner=user)
        headings += [
            _heading(
                f"{model.__name__}-mine",
                f"My {name}",
                model,
                mine,
                "status=open&owner=me",
            ),
            _heading(
                f"{model.__name__}-today",
                f"My {name} due today",
                model,
                mine.filter(next_action_on=today),
                "status=open&owner=me",
            ),
            _heading(
                f"{model.__name__}-overdue",
                f"My {name} overdue",
                model,
                mine.filter(next_action_on__lt=today),
                "status=open&owner=me",
                ("next_action_on", "pk"),
            ),
            _heading(
                f"{model.__name__}-new",
                f"New {name} nobody has",
                model,
                model.objects.filter(status=model.Status.NEW, owner__isnull=True),
                "status=new&owner=none",
            ),
        ]
    headings.append(
        _heading(
            "SupportRequest-held",
            "Support requests held for a check",
            SupportRequest,
            SupportRequest.objects.filter(status=SupportRequest.Status.HELD),
            "status=held",
        )
    )
    headings.append(
        _heading(
            "SupportRequest-late",
            "First responses overdue",
            SupportRequest,
            open_work(SupportRequest).filter(
                first_response_at__isnull=True, response_due_at__lte=now
            ),
            "status=open",
            ("response_due_at", "pk"),
        )
    )
    return MyWork(today, headings, renewals_due(today))


def renewals_due(today: date, within: int = 60) -> list[tuple[Contract, int]]:
    """Contracts ending within ``within`` days (60, flagged again at 30), soonest first."""
    contracts = (
        Contract.objects.filter(end__gte=today, end__lte=today + timedelta(days=within))
        .select_related("organisation")
        .order_by("end", "pk")[:100]
    )
    return [(c, (c.end - today).days) for c in contracts if c.end is not None]


def unprocessed_mail_count() -> int:
    from .models import InboundMail

    return InboundMail.objects.filter(status=InboundMail.Status.UNPROCESSED).count()
