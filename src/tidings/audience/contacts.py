"""Reading contacts for the operator pages: search, filters and keyset pagination."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from .models import Contact, Subscription

PAGE_SIZE = 50


def search_contacts(
    q: str = "", *, list_id: int | None = None, status: str = ""
) -> QuerySet[Contact]:
    """Contacts matching a search box: the start of the address, or of any word in the name.

    Prefix matches only, so PostgreSQL answers from indexes at a million contacts (lower(email)
    text_pattern_ops and lower(name)); "contains" would scan the table.
    """
    contacts = Contact.objects.all()
    q = q.strip()
    if q:
        needle = q.lower()
        match = Q(email_lower__startswith=needle) | Q(name_lower__startswith=needle)
        if " " not in needle and "@" not in needle:
            match |= Q(name_lower__contains=f" {needle}")
        contacts = contacts.alias(email_lower=Lower("email"), name_lower=Lower("name")).filter(
            match
        )
    if list_id or status:
        subs = Subscription.objects.filter(contact=OuterRef("pk"))
        if list_id:
            subs = subs.filter(mailing_list_id=list_id)
        if status:
            subs = subs.filter(status=status)
        contacts = contacts.filter(Exists(subs))
    return contacts


@dataclass
class Page:
    items: list[Contact]
    next_after: int | None
    has_previous: bool


def keyset_page(contacts: QuerySet[Contact], after: int | None, size: int = PAGE_SIZE) -> Page:
    """Newest first, ``size`` at a time, continuing after the id ``after``: no OFFSET, no COUNT."""
    qs = contacts.order_by("-pk")
    if after:
        qs = qs.filter(pk__lt=after)
    items = list(qs[: size + 1])
    more = len(items) > size
    items = items[:size]
    return Page(items, items[-1].pk if more and items else None, bool(after))
