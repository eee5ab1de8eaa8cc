"""Bearer tokens: which token, is it allowed this, and has it asked too often.

A token acts for its operator and can never do more than the operator's role allows
(``tidings.lib.access.has_permission``), whatever its scopes say; each endpoint names its scope
and the operator page whose permission it borrows.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db.models import OuterRef, StringAgg, Subquery, Value
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from tidings.lib.access import ROLES, has_permission
from tidings.lib.ratelimit import hit

from . import errors
from .actions import hash_token
from .errors import Problem
from .models import ApiToken

# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# A token expiring within this is flagged on the token page and by `tidings doctor`.
EXPIRY_WARNING = timedelta(days=14)


def rate_limit() -> tuple[int, int]:
    """(requests, per seconds) allowed to one token: TIDINGS_API_RATE_LIMIT / _WINDOW."""
    return (
        int(getattr(settings, "TIDINGS_API_RATE_LIMIT", 600)),
        int(getattr(settings, "TIDINGS_API_RATE_WINDOW", 60)),
    )


def check_rate(token: ApiToken) -> None:
    """Count the request in the token's current window; raise a 429 problem past the limit.

    A fixed window in the cache (``tidings.lib.ratelimit``: shared by every process when
    TIDINGS_REDIS_URL is set).
    """
    limit, window = rate_limit()
    if limit <= 0:
        return
    # Keyed by the token's hash rather than its id: ids of deleted tokens can come back.
    verdict = hit("api", token.token_hash[:24], (limit, window))
    if not verdict.allowed:
        wait = verdict.retry_after
        raise Problem(
            429,
            f"This token may make {limit} requests every {window} seconds; "
            f"try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )


@functools.cache
def _role_names() -> Subquery:
    """The operator's role names, comma-joined, as a subquery of the token's own query."""
    membership = get_user_model().groups.through
    return Subquery(
        membership.objects.filter(  # type: ignore[misc]  # the plugin misses the annotation
            user_id=OuterRef("operator_id"), group__name__in=ROLES
        )
        .values("user_id")
        .annotate(names=StringAgg("group__name", delimiter=Value(",")))
        .values("names")
    )


class TokenExpired(Exception):
    """The token is right, but past its ``expires_at``."""


def find_token(text: str) -> ApiToken | None:
    """The active token with this text, its operator and their roles, in one query (every API
    request pays for it: bench/api.py).  Raises TokenExpired for a token past its expiry (it is
    not marked as used)."""
    token = (
        ApiToken.objects.select_related("operator")
        .annotate(role_names=_role_names())
        .filter(token_hash=hash_token(text), revoked_at__isnull=True)
        .order_by()
        .first()
    )
    if token is None or not (token.operator.is_active and token.operator.is_staff):
        return None
    if token.expired:
        raise TokenExpired()
    # What tidings.lib.access.operator_roles would otherwise query for.
    token.operator._tidings_roles = {  # type: ignore[attr-defined]  # a cache on the instance
        name for name in (token.role_names or "").split(",") if name
    }
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def refuse_nul(request: HttpRequest) -> None:
    """NUL characters cannot be stored in PostgreSQL text: refuse them up front, clearly.

    A NUL *byte* in a JSON body is not the NUL character (JSON writes that ``\\u0000``): JSON
    text holds no raw control characters, so it means a body in UTF-16 or UTF-32, which is a 400
    saying so (it was a 422 "contains a NUL character", sending the client's author the wrong
    way)."""
    if request.content_type == "application/json" and b"\x00" in request.body:
        raise Problem(
            400,
            f"The body cannot be read: {errors.NOT_UTF8}. Send one JSON object in UTF-8, with "
            "each key once.",
        )
    in_query = any("\x00" in value for value in request.GET.values())
    in_body = request.content_type == "application/json" and b"\\u0000" in request.body
    in_form = request.content_type == "multipart/form-data" and any(
        "\x00" in value for value in request.POST.values()
    )
    if in_query or in_body or in_form:
        raise Problem(422, "The request contains a NUL character, which no field may hold.")


def page_permission(url_name: str) -> str:
    """The permission of the operator page named ``url_name`` (its ``@operator_required(perm=)``).

    Read from the URL resolver, so an API route and its page cannot disagree."""
    from django.urls import URLPattern, URLResolver, get_resolver

    namespace, _, name = url_name.rpartition(":")
    resolver = get_resolver()
    for part in filter(None, namespace.split(":")):
        resolver = resolver.namespace_dict[part][1]
    pending = list(resolver.url_patterns)
    while pending:
        entry = pending.pop(0)
        if isinstance(entry, URLResolver) and not entry.namespace:
            pending.extend(entry.url_patterns)
        elif isinstance(entry, URLPattern) and entry.name == name:
            perm = getattr(entry.callback, "operator_permission", None)
            if perm is None:
                raise ImproperlyConfigured(f"{url_name} names no permission to borrow")
            return perm
    raise ImproperlyConfigured(f"no operator page is called {url_name}")


class TokenAuth(HttpBearer):
    """Authenticates the token and checks ``scope`` and the operator's permission.

    The permission is the one of the operator page that does the same thing (``page``, a URL
    name): the API never lets a role do what the page refuses it, nor refuses what the page
    allows (tests/api/test_access_rules.py walks every route).  A route with no page names its
    ``perm`` and says why (``no_page``).
    """

    def __init__(self, scope: str, *, page: str = "", perm: str = "", no_page: str = "") -> None:
        super().__init__()
        if bool(page) == bool(perm) or (perm and not no_page):
            raise ValueError("need(scope, page=...) or need(scope, perm=..., no_page='why')")
        self.scope = scope
        self.page = page
        self._perm = perm
        self.no_page = no_page

    @functools.cached_property
    def perm(self) -> str:
        # Looked up on first use: the URLconf is not loaded yet when the routers are imported.
        return self._perm or page_permission(self.page)

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        try:
            found = find_token(token)
        except TokenExpired:
            # Said plainly (a program's owner should make a new one), never echoing the token.
            raise Problem(
                401,
                "This API token has expired. An owner can make a new one under "
                "Settings → API tokens.",
                headers={
                    "WWW-Authenticate": 'Bearer realm="tidings", error="invalid_token", '
                    'error_description="The token has expired"'
                },
            ) from None
        if found is None:
            return None
        refuse_nul(request)
        check_rate(found)
        if self.scope not in found.scopes:
            raise Problem(403, f"This token does not have the '{self.scope}' scope.")
        if not has_permission(found.operator, self.perm):
            raise Problem(
                403,
                f"The token's operator may not do this (their role lacks the '{self.perm}' "
                "permission).",
            )
        return found


def need(scope: str, *, page: str = "", perm: str = "", no_page: str = "") -> TokenAuth:
    """The auth of one route: the token's ``scope``, and the permission of the operator ``page``
    that does the same (or ``perm`` with the reason there is ``no_page``)."""
    return TokenAuth(scope, page=page, perm=perm, no_page=no_page)


def check_route_permissions(app_configs=None, **kwargs) -> list:
    """System check: every API route's operator page exists and names a permission, so a typo
    fails at start-up instead of as a 500 on the first request."""
    from django.core.checks import Error

    from .api import api

    errors = []
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for auth in operation.auth_callbacks:
                    if not isinstance(auth, TokenAuth):
                        continue
                    try:
                        auth.perm  # noqa: B018 - resolves and caches the page's permission
                    except ImproperlyConfigured as exc:
                        errors.append(
                            Error(
                                f"API route {operation.view_func.__name__}: {exc}",
                                hint="need(scope, page='<url name of an operator page>')",
                                id="tidings.E401",
                            )
                        )
    return errors


def token_of(request: HttpRequest) -> ApiToken:
    return request.auth  # type: ignore[attr-defined]  # django-ninja sets it after auth
