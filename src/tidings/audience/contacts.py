"""Reading contacts for the operator pages: search, filters and keyset pagination."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, Func, IntegerField, OuterRef, Q, QuerySet
from django.db.models.functions import Lower

from .emails import LOCAL_PART_MAX_OCTETS
from .models import Contact, Subscription

PAGE_SIZE = 50


def search_contacts(
    q: str = "", *, list_id: int | None = None, status: str = ""
) -> QuerySet[Contact]:
    """Contacts matching a search box: the start of the address, or of any word in the name.

    Something with an "@" is the start of an address only, matched on the case-folded
    ``email_key`` (so ``ZOË`` finds ``zoë@`` on SQLite too): PostgreSQL answers it from the
    unique index on email_key, built with text_pattern_ops for that (audience migration 0011,
    as 0006 did for lower(email); at 1M contacts ~0.1 ms instead of a ~0.6 s scan).  A contact
    kept apart by migration 0011 (NULL key) is found by its name only until it is merged.
    A name search scans (newest first, so common words stop early): a name word can start
    anywhere in the name, which no btree serves, and an index for it would cost every import.
    """
    contacts = Contact.objects.all()
    q = q.strip()
    if q:
        needle = q.lower()
        match = Q(email_key__startswith=q.casefold())
        if "@" not in needle:
            match |= Q(name_lower__startswith=needle)
        if " " not in needle and "@" not in needle:
            match |= Q(name_lower__contains=f" {needle}")
        contacts = contacts.alias(name_lower=Lower("name")).filter(match)
    if list_id or status:
        subs = Subscription.objects.filter(contact=OuterRef("pk"))
        if list_id:
            subs = subs.filter(mailing_list_id=list_id)
        if status:
            subs = subs.filter(status=status)
        contacts = contacts.filter(Exists(subs))
    return contacts


MERGE_CANDIDATES = 20


def merge_candidates(keep: Contact, q: str, *, first: Sequence[Contact] = ()) -> list[Contact]:
    """Contacts the merge page offers to merge into ``keep``: ``first`` (its case-folded twins),
    then those the search box ``q`` finds (``search_contacts``: the start of an address or of a
    name word; a number, or ``#`` and a number, is a contact id), newest first, ``keep``
    itself never; at most ``MERGE_CANDIDATES`` + 1 (one more than shown says "refine")."""
    q = q.strip()
    found: list[Contact] = [c for c in first if c.pk != keep.pk]
    if q:
        number = q.removeprefix("#")
        matches = Contact.objects.filter(pk=int(number)) if number.isdigit() else search_contacts(q)
        seen = {c.pk for c in found} | {keep.pk}
        found += matches.exclude(pk__in=seen).order_by("-pk")[: MERGE_CANDIDATES + 1]
    return found[: MERGE_CANDIDATES + 1]


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


def contacts_kept_apart(limit: int = 10) -> tuple[int, list[tuple[int, int | None]]]:
    """Contacts the upgrade to case-folded address keys kept apart (audience migration 0011):
    how many, and for the first ``limit`` (oldest first) their id with the id of the contact
    that holds their address's key (None: that one is gone since).  Ids only: these end up in
    `tidings doctor`'s output.  A contact a legal hold kept without its address (erasure blanks
    the address and its key together) has nothing to merge and is not one of them."""
    kept = Contact.objects.filter(email_key__isnull=True).exclude(email="")
    count = kept.count()
    pairs: list[tuple[int, int | None]] = []
    if count:
        for pk, email in kept.order_by("pk").values_list("pk", "email")[:limit]:
            holder = Contact.objects.with_email(email).values_list("pk", flat=True).first()
            pairs.append((pk, holder))
    return count, pairs


class _OctetLength(Func):
    """A text's length in bytes (UTF-8): PostgreSQL's octet_length; on SQLite, length() of the
    text as a blob.  Django's Length counts characters."""

    function = "OCTET_LENGTH"
    output_field = IntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))")


def local_parts_too_long(limit: int = 10) -> tuple[int, list[int]]:
    """Contacts whose address has more than 64 octets before the @ (RFC 5321), stored before
    every path checked it (``emails.normalise_email`` refuses them now): how many, and the
    first ``limit`` ids.  Ids only: these end up in `tidings doctor`'s output.

    The database picks the addresses over 65 octets in all (one pass over the table, no
    index); the local part, up to the last @ as the validator splits it, is measured here."""
    candidates = (
        Contact.objects.alias(octets=_OctetLength("email"))
        .filter(octets__gt=LOCAL_PART_MAX_OCTETS + 1)
        .order_by("pk")
        .values_list("pk", "email")
    )
    found = [
        pk
        for pk, email in candidates.iterator(chunk_size=2000)
        if len(email.rpartition("@")[0].encode("utf-8")) > LOCAL_PART_MAX_OCTETS
    ]
    return len(found), found[:limit]
