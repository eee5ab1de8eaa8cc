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

    Something with an "@" is the start of an address only: PostgreSQL answers it from the unique
    index on lower(email), built with text_pattern_ops for that (audience migration 0006; at 1M
    contacts ~0.1 ms instead of a ~0.6 s scan).  A name search scans (newest first, so common
    words stop early): a name word can start anywhere in the name, which no btree serves, and
    an index for it would cost every import.
    """
    contacts = Contact.objects.all()
    q = q.strip()
    if q:
        needle = q.lower()
        match = Q(email_lower__startswith=needle)
        if "@" not in needle:
            match |= Q(name_lower__startswith=needle)
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
