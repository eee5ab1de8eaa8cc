"""The operator navigation: six groups of pages, each item shown only to operators whose role
opens it, and the item (and group) of the page being shown marked.

An item's permission is read from its view (``operator_required`` leaves it on the wrapper), so
the menu never offers a page that would answer 403.  The current item is the one whose address
is the longest start of the request's path ("/audience/segments/4/" is under Segments, not
Contacts), so pages deeper inside an area keep their item marked without a list of names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.http import HttpRequest
from django.urls import NoReverseMatch, resolve, reverse

from tidings.lib.access import has_permission

GROUPS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Audience",
        (
            ("audience:contacts", "Contacts"),
            ("audience:lists", "Lists"),
            ("audience:segments", "Segments"),
            ("audience:signup-forms", "Sign-up forms"),
            ("audience:imports", "Imports"),
            ("system-emails:index", "Confirmation emails"),
        ),
    ),
    (
        "Campaigns",
        (
            ("campaigns:index", "Campaigns"),
            ("journeys:index", "Journeys"),
            ("templates_ui:index", "Templates"),
            ("media:index", "Media library"),
            ("campaigns:senders", "Senders"),
            ("campaigns:deliverability", "Deliverability"),
            ("campaigns:lookup", "Why didn't they get it?"),
            ("outbox:index", "Outbox"),
            ("bounces:index", "Bounces"),
        ),
    ),
    (
        "CRM",
        (
            ("crm:index", "Records"),
            ("booking:upcoming", "Demos"),
            ("booking:availability", "Demo availability"),
        ),
    ),
    (
        "Website",
        (
            ("analytics:dashboard", "Visitor statistics"),
            ("analytics:snippet", "Add to your website"),
        ),
    ),
    (
        "Privacy",
        (
            ("privacy:queue", "Rights requests"),
            ("privacy:audit", "Audit log"),
            ("audience:suppression", "Suppression list"),
            ("policy:notice", "Privacy notice"),
        ),
    ),
    (
        "Settings",
        (
            ("web:operators", "Operators"),
            ("web:branding", "Branding"),
            ("api_settings:tokens", "API tokens"),
            ("api_settings:webhooks", "Webhooks"),
            ("admin:index", "Django admin"),
        ),
    ),
)


@dataclass(frozen=True)
class Item:
    label: str
    url: str
    current: str = ""  # "page" on its own page, "true" deeper inside it, "" elsewhere


@dataclass(frozen=True)
class Group:
    label: str
    items: tuple[Item, ...]

    @property
    def current(self) -> bool:
        return any(item.current for item in self.items)

    @property
    def key(self) -> str:
        return self.label.lower()


@cache
def _known() -> tuple[tuple[str, tuple[tuple[str, str, str, str | None], ...]], ...]:
    """(group, ((label, url, url name, permission), ...)): resolved once per process; items whose
    view does not exist (an app left out) are dropped."""
    groups = []
    for group, items in GROUPS:
        known = []
        for name, label in items:
            try:
                url = reverse(name)
            except NoReverseMatch:
                continue
            func = resolve(url).func
            perm = getattr(func, "operator_permission", None)
            if name == "admin:index":
                perm = "superuser"
            known.append((label, url, name, perm))
        groups.append((group, tuple(known)))
    return tuple(groups)


def _allowed(user: object, perm: str | None) -> bool:
    if perm == "superuser":
        return bool(getattr(user, "is_superuser", False))
    return perm is None or has_permission(user, perm)


def navigation(request: HttpRequest) -> list[Group]:
    """The groups and items this operator may open, the current one marked."""
    user = request.user
    path = request.path
    visible = [
        (group, [(label, url) for label, url, _, perm in items if _allowed(user, perm)])
        for group, items in _known()
    ]
    candidates = [url for _, items in visible for _, url in items if path.startswith(url)]
    best = max(candidates, key=len, default=None)
    groups = []
    for group, items in visible:
        if not items:
            continue
        marked = tuple(
            Item(label, url, ("page" if url == path else "true") if url == best else "")
            for label, url in items
        )
        groups.append(Group(group, marked))
    return groups
