"""The search box: contacts, campaigns and enquiries, each only for operators whose role may see
them (an analyst finds campaigns and their reports, never a person)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import Q
from django.urls import reverse

from tidings.lib.access import has_permission

LIMIT = 10
MIN_LENGTH = 2


@dataclass
class Hit:
    title: str
    detail: str
    url: str


@dataclass
class Section:
    key: str
    title: str
    hits: list[Hit] = field(default_factory=list)
    more_url: str = ""  # the full search on the area's own page


def search(user: object, query: str) -> list[Section]:
    """What ``query`` finds that ``user`` may see, up to ten of each kind."""
    query = " ".join(query.split())[:200]
    if len(query) < MIN_LENGTH:
        return []
    sections = []
    if has_permission(user, "people"):
        from tidings.audience.contacts import search_contacts

        contacts = search_contacts(query).order_by("-pk")[:LIMIT]
        sections.append(
            Section(
                "contacts",
                "Contacts",
                [
                    Hit(c.name or c.email, c.email, reverse("audience:contact", args=[c.pk]))
                    for c in contacts
                ],
                reverse("audience:contacts") + "?" + urlencode({"q": query}),
            )
        )
    may_edit = has_permission(user, "content")
    if may_edit or has_permission(user, "reports"):
        from tidings.campaigns.models import Campaign

        campaigns = Campaign.objects.filter(Q(name__icontains=query) | Q(subject__icontains=query))
        if not may_edit:  # reports only: a report is all they may open
            campaigns = campaigns.exclude(started_at=None)
        hits = [
            Hit(
                c.name,
                f"{c.get_status_display()} · {c.subject}",
                reverse("campaigns:detail" if may_edit else "campaigns:report", args=[c.pk]),
            )
            for c in campaigns.order_by("-created_at")[:LIMIT]
        ]
        sections.append(Section("campaigns", "Campaigns", hits))
    if has_permission(user, "people"):
        from tidings.crm.conversations import with_thread_subjects
        from tidings.crm.queries import search_enquiries
        from tidings.crm.queues import shown_subject

        # Named as My work and the lists name them: by the (screened, as kept) subject, read
        # with the list in one query, not "Enquiry #12 from ..." that had to be opened to tell.
        enquiries = with_thread_subjects(search_enquiries(query).select_related("contact"))
        sections.append(
            Section(
                "enquiries",
                "Enquiries",
                [
                    Hit(
                        f"{shown_subject(e) or '(no subject)'} (#{e.pk})",
                        f"{e.contact.name or e.contact.email} · {e.channel}"
                        f" · {e.created_at:%d %b %Y}",
                        reverse("crm:enquiry", args=[e.pk]),
                    )
                    for e in enquiries.order_by("-pk")[:LIMIT]
                ],
                reverse("crm:enquiries") + "?" + urlencode({"q": query}),
            )
        )
    return sections
