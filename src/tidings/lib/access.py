"""Who may use the operator interface, and which parts of it.

Operators are active staff users.  A visitor who is not signed in is sent to the sign-in page
(with ``?next=``); someone signed in without staff status, or without the permission a view needs,
is refused with 403 rather than sent back to sign in, which would loop.

Permissions are coarse capabilities, granted by role:

``people``    see and change personal data of contacts and CRM records
``content``   templates, layouts, campaigns, lists, sign-up forms, segments, imports
``send``      schedule, start, pause and test-send campaigns; transactional mail
``reports``   campaign reports, dashboards and counts (no personal data)
``privacy``   rights requests, audit log, retention, suppression, exports of personal data
``settings``  operators, API tokens, webhooks, sending and site settings

A view decorated with bare ``@operator_required`` is open to every operator (the dashboard);
everything that shows or changes data names its permission: ``@operator_required(perm="people")``.

Two-factor sign-in (``lib/two_factor.py``): an operator who must use a second factor, or who has
one, reaches no operator page until a code was accepted in this session; they are sent to the
code page (or, not yet enrolled, to enrolment) and come back.  Only the pages that do the
enrolling and verifying pass ``second_factor=False``.

``tests/web/test_access_rules.py`` walks every URL of the project and proves each is either on its
public allow-list or refused to signed-out visitors and to roles without the view's permission.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, overload
from urllib.parse import urlencode

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers

if TYPE_CHECKING:
    from django.contrib.auth.models import User

View = Callable[..., HttpResponseBase]


class OperatorRequest(HttpRequest):
    """The request a view behind ``operator_required`` receives: its user is a signed-in operator.
    Only for type checking; at run time it is Django's own request."""

    user: User  # narrowed from User | AnonymousUser by the decorator


PERMISSIONS: frozenset[str] = frozenset(
    {"people", "content", "send", "reports", "privacy", "settings"}
)

#: Role name → the permissions it grants.  Roles are stored as Django groups of the same name.
ROLES: dict[str, frozenset[str]] = {
    "owner": PERMISSIONS,
    "editor": frozenset({"people", "content", "send", "reports"}),
    # Writes campaigns but cannot send them: an editor or owner confirms (listmonk's
    # "campaigns:send"; with TIDINGS_SEND_NEEDS_SECOND_OPERATOR not even they send their own).
    "writer": frozenset({"people", "content", "reports"}),
    "analyst": frozenset({"reports"}),
    "privacy_officer": frozenset({"people", "privacy", "reports"}),
}

ROLE_LABELS: dict[str, str] = {
    "owner": "Owner",
    "editor": "Editor",
    "writer": "Writer (cannot send)",
    "analyst": "Analyst",
    "privacy_officer": "Privacy officer",
}


def operator_roles(user: object) -> set[str]:
    """The role names an operator holds (a superuser is always an owner)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active or not user.is_staff:  # type: ignore[attr-defined]
        return set()
    if user.is_superuser:  # type: ignore[attr-defined]
        return {"owner"}
    cached = getattr(user, "_tidings_roles", None)
    if cached is None:
        cached = set(
            user.groups.filter(name__in=ROLES).values_list("name", flat=True)  # type: ignore[attr-defined]
        )
        user._tidings_roles = cached  # type: ignore[attr-defined]
    return cached


def has_permission(user: object, perm: str) -> bool:
    """True if ``user`` is an operator whose roles grant ``perm``."""
    if perm not in PERMISSIONS:
        raise ValueError(f"unknown permission {perm!r}")
    return any(perm in ROLES[role] for role in operator_roles(user))


def operators_with_permission(perm: str) -> Q:
    """A filter on users matching the active operators whose roles grant ``perm``: the rule of
    ``has_permission``, for a queryset (it may repeat a user who holds two such roles)."""
    if perm not in PERMISSIONS:
        raise ValueError(f"unknown permission {perm!r}")
    roles = [role for role, perms in ROLES.items() if perm in perms]
    granted = Q(is_superuser=True) | Q(groups__name__in=roles)
    return Q(is_active=True, is_staff=True) & granted


@overload
def operator_required(view: View) -> View: ...
@overload
def operator_required(
    *, perm: str | None = None, second_factor: bool = True
) -> Callable[[View], View]: ...


def operator_required(
    view: View | None = None, *, perm: str | None = None, second_factor: bool = True
) -> View | Callable[[View], View]:
    """Decorate a view so only active staff users (holding ``perm``, if given) reach it.

    The wrapper carries ``operator_permission`` (the perm, or None for any operator): the URL walk
    in tests/web/test_access_rules.py reads it.
    """
    if perm is not None and perm not in PERMISSIONS:
        raise ValueError(f"unknown permission {perm!r}")

    def decorate(inner: View) -> View:
        @wraps(inner)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not (user.is_active and user.is_staff):
                raise PermissionDenied("The operator interface is for staff users.")
            if second_factor:
                from .two_factor import session_needs_second_factor

                step = session_needs_second_factor(request)
                if step is not None:
                    target = reverse("two-factor-verify" if step == "verify" else "two-factor")
                    query = urlencode({"next": request.get_full_path()})
                    return HttpResponseRedirect(f"{target}?{query}")
            if perm is not None and not has_permission(user, perm):
                raise PermissionDenied("Your role does not allow this.")
            response = inner(request, *args, **kwargs)
            if not response.has_header("Cache-Control"):
                # Operator pages show personal data and secrets shown once (API tokens, webhook
                # secrets, recovery codes): no browser or proxy may keep a copy.
                add_never_cache_headers(response)
            return response

        wrapper.operator_permission = perm  # type: ignore[attr-defined]
        wrapper.operator_second_factor = second_factor  # type: ignore[attr-defined]
        return wrapper

    if view is not None:
        return decorate(view)
    return decorate
