"""Choosing a contact to preview or test-send as: by email address, by name, or by number.

Operators know people by name and address, not by internal id, so the field takes any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q

from tidings.audience.models import Contact

MAX_MATCHES = 10


@dataclass
class Choice:
    query: str
    contact: Contact | None = None
    matches: list[Contact] = field(default_factory=list)

    @property
    def problem(self) -> str:
        """Why no single contact was chosen ("" when one was, or when nothing was asked)."""
        if not self.query or self.contact is not None:
            return ""
        if not self.matches:
            return f"No contact matches “{self.query}”."
        shown = ", ".join(c.email for c in self.matches)
        more = " (the first ten)" if len(self.matches) == MAX_MATCHES else ""
        count = len(self.matches)
        return f"{count} contacts match “{self.query}”{more}: {shown}. Type the whole address."


def choose_contact(query: str) -> Choice:
    """The contact ``query`` names: an exact address, a "#id" or plain number, or the one
    contact whose address or name contains it; otherwise the matches (at most ten)."""
    query = " ".join((query or "").split())[:254]
    choice = Choice(query=query)
    if not query:
        return choice
    if query.lstrip("#").isdigit():
        choice.contact = Contact.objects.filter(pk=int(query.lstrip("#"))).first()
        return choice
    choice.contact = Contact.objects.with_email(query).first() if "@" in query else None
    if choice.contact is None:
        found = Q(email__icontains=query) | Q(name__icontains=query)
        choice.matches = list(Contact.objects.filter(found).order_by("email")[:MAX_MATCHES])
        if len(choice.matches) == 1:
            choice.contact, choice.matches = choice.matches[0], []
    return choice
