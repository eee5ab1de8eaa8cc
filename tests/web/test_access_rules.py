"""Every URL of the project is either public on purpose or closed to whoever may not use it.

The walk goes through every pattern the project's URL resolver knows (so views added on any
branch are included the moment they are merged) and, for each one, proves one of:

* it is on ``PUBLIC`` below, with the reason it is public (privacy notice, sign-up forms,
  preference centre, unsubscribe, tracking, webhooks, the rights request page, the archive, the
  sign-in pages, the API with its own tokens); or
* it is an operator view (``tidings.lib.access.operator_required``): a signed-out visitor is sent
  to sign in, an operator whose role lacks the view's permission (read from the wrapper's
  ``operator_permission``) gets 403, an owner who has not done two-factor sign-in is sent to do it
  first, and a role that holds the permission is let through; or
* it is the Django admin, which only verified superusers may use.

Anything else fails, with a message saying what to do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path

from tests.operators import make_operator, sign_in
from tidings.lib.access import ROLES

# URL name (or route, for unnamed patterns) → why anyone on the internet may open it.
PUBLIC: dict[str, str] = {
    "policy:notice": "the privacy notice is for everyone",
    "policy:notice-json": "the privacy notice, machine-readable",
    "public:signup": "sign-up forms, embedded on the controller's website",
    "public:signup-done": "a sign-up form's thank-you page",
    "public:confirm": "double opt-in confirmation link (signed token)",
    "public:preferences-link": "asking for a preference-centre link by email",
    "public:preferences-link-sent": "the preference-centre link request's thank-you page",
    "public:preferences": "preference centre (signed token)",
    "public:unsubscribe": "one-click unsubscribe, RFC 8058 (signed token)",
    "archive:index": "public campaign archive",
    "archive:feed": "public campaign archive feed",
    "archive:campaign": "public campaign archive",
    "crm_public:contact": "public enquiry form",
    "crm_public:contact-sent": "public enquiry form's thank-you page",
    "rights:request": "the public page where anyone asks for access, rectification, erasure",
    "rights:sent": "the rights request page's confirmation",
    "rights:verify": "rights request identity verification link (signed token)",
    "rights:download": "access package download link (signed, expiring token)",
    # Views of parallel branches, named here ahead of their merge (harmless until they exist).
    "track:open": "open-tracking pixel in emails (signed token)",
    "track:click": "click-tracking redirect in emails (signed token)",
    "journey-track:open": "open-tracking pixel in journey emails (signed token)",
    "journey-track:click": "click-tracking redirect in journey emails (signed token)",
    "booking_public:book": "public demo booking page",
    "booking_public:booked": "public demo booking confirmation",
    "booking_public:reschedule": "booking change link (signed token)",
    "booking_public:cancel": "booking cancel link (signed token)",
    "booking_public:feed": "booking calendar feed (signed token)",
    "analytics_public:collect": "website analytics beacon",
    "analytics_public:pixel": "website analytics pixel",
    "analytics_public:banner": "cookie banner text for the website",
    "analytics_public:consent": "cookie banner answer from the website",
    "login": "sign-in page",
    "logout": "signing out (POST only)",
    "password_reset": "forgotten-password page",
    "password_reset_done": "forgotten-password page",
    "password_reset_confirm": "password reset link (signed, expiring token)",
    "password_reset_complete": "password reset finished",
    "operator-join": "operator invitation link (signed, expiring token)",
    "media_public:image": "pictures of the media library, shown in emails and public pages",
    "web:favicon": "the site icon browsers ask every site for",
}
# Whole URL prefixes that are public because they authenticate on their own.
PUBLIC_PREFIXES: dict[str, str] = {
    "api/": "REST API: per-operator tokens with scopes (tests/api)",
    "static/": "static files",
    "webhooks/": "provider webhooks (bounces, complaints), verified by their signatures",
}

# Operator views without a permission (any operator): only these.  Everything that shows or
# changes data must name one with @operator_required(perm=...).
ANY_OPERATOR: dict[str, str] = {
    "web:dashboard": "the landing page, figures only",
    "web:search": "the search box: each kind of result only for roles that may see it",
    "two-factor-verify": "the second step of signing in",
    "two-factor": "enrolling one's own second factor",
    "account": "one's own account",
    "recovery-codes": "one's own recovery codes",
    "password-change": "one's own password",
    "sign-out-everywhere": "one's own sessions",
}

ADMIN_PREFIX = "admin/"
HOW_TO_FIX = (
    "Decorate the view with @operator_required(perm=...) from tidings.lib.access (one of "
    "people, content, send, reports, privacy, settings; for a class-based view, wrap the "
    "as_view() result in urls.py), or, if it really is for the public, put "
    "it in your app's public_urls.py and add its URL name to PUBLIC in "
    "tests/web/test_access_rules.py with the reason it is public."
)


@dataclass(frozen=True)
class Route:
    route: str  # "audience/contacts/<int:contact_id>/"
    name: str  # "audience:contact" ("" when unnamed)
    callback: object

    @property
    def key(self) -> str:
        return self.name or self.route

    @property
    def module(self) -> str:
        return (
            f"{getattr(self.callback, '__module__', '?')}.{getattr(self.callback, '__name__', '?')}"
        )

    def example_url(self) -> str:
        """The route with a made-up value for every parameter."""

        def value(match: re.Match) -> str:
            converter = match.group(1) or "str"
            return {"int": "1", "uuid": str(uuid.UUID(int=1)), "path": "x/y"}.get(converter, "x")

        url = re.sub(r"<(?:(\w+):)?\w+>", value, self.route)
        url = re.sub(r"\(\?P<\w+>[^)]*\)", "1", url).lstrip("^").rstrip("$").replace("\\", "")
        return "/" + url


def walk(resolver: URLResolver | None = None, prefix: str = "", ns: str = "") -> Iterator[Route]:
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{ns}:{entry.namespace}" if ns and entry.namespace else entry.namespace or ns
            yield from walk(entry, prefix + str(entry.pattern), inner or "")
        elif isinstance(entry, URLPattern):
            name = f"{ns}:{entry.name}" if ns and entry.name else entry.name or ""
            yield Route(prefix + str(entry.pattern), name, entry.callback)


def classify(route: Route) -> str:
    """ "public", "admin", "operator:<perm or *>", or raise AssertionError saying what to do."""
    if route.key in PUBLIC or any(route.route.startswith(p) for p in PUBLIC_PREFIXES):
        return "public"
    if route.route.startswith(ADMIN_PREFIX):
        return "admin"
    if not hasattr(route.callback, "operator_permission"):
        raise AssertionError(
            f"/{route.route} ({route.key}, view {route.module}) is neither an operator view nor "
            f"on the public allow-list. {HOW_TO_FIX}"
        )
    perm = route.callback.operator_permission
    if perm is None and route.key not in ANY_OPERATOR:
        raise AssertionError(
            f"/{route.route} ({route.key}, view {route.module}) is open to every operator: name "
            "the permission it needs, @operator_required(perm=...). Only an operator's own "
            "account pages and the dashboard may be bare (ANY_OPERATOR in "
            "tests/web/test_access_rules.py)."
        )
    return f"operator:{perm or '*'}"


ROUTES = list(walk())


def request(client: Client, url: str) -> HttpResponse:
    """GET, or POST for views that only take POST."""
    response = client.get(url)
    if response.status_code == 405:
        response = client.post(url)
    return response


def is_sign_in_redirect(response: HttpResponse, url: str) -> bool:
    return response.status_code == 302 and response.url.startswith("/login/?next=")


@pytest.fixture
def role_clients(db, settings) -> dict[str, Client]:
    """A client per role, signed in with a second factor."""
    settings.TIDINGS_REQUIRE_2FA = "privileged"
    clients = {}
    for role in ROLES:
        client = Client()
        sign_in(client, make_operator(f"walk-{role}", role))
        clients[role] = client
    return clients


def test_the_walk_sees_the_whole_project():
    keys = {r.key for r in ROUTES}

    assert {"web:dashboard", "audience:contacts", "campaigns:index", "crm:index"} <= keys
    assert {"public:unsubscribe", "login", "web:operators"} <= keys
    assert any(r.route.startswith(ADMIN_PREFIX) for r in ROUTES)


@pytest.mark.parametrize("route", ROUTES, ids=[r.route or "/" for r in ROUTES])
def test_every_url_is_public_on_purpose_or_refused_to_who_may_not_use_it(
    route: Route, role_clients: dict[str, Client], client: Client
):
    rule = classify(route)
    url = route.example_url()

    if rule == "public":
        response = request(client, url)
        assert not is_sign_in_redirect(response, url), (
            f"{url} is on the public allow-list but sends visitors to sign in: remove it from "
            "PUBLIC in tests/web/test_access_rules.py"
        )
        return

    if rule == "admin":
        visitors = {"a signed-out visitor": client}
        visitors.update({r: role_clients[r] for r in ("editor", "analyst", "privacy_officer")})
        for who, visitor in visitors.items():
            response = visitor.get(url, follow=True)
            if response.status_code == 405:
                response = visitor.post(url, follow=True)
            landed = response.request["PATH_INFO"]
            assert response.status_code in {403, 405} or landed == "/login/", (
                f"the admin page {url} is open to {who}: it landed on {landed} "
                f"({response.status_code})"
            )
        return

    perm = rule.removeprefix("operator:")
    response = request(client, url)
    assert is_sign_in_redirect(response, url), (
        f"{url} ({route.key}) did not send a signed-out visitor to sign in "
        f"(got {response.status_code})"
    )
    for role, perms in ROLES.items():
        response = request(role_clients[role], url)
        if perm == "*" or perm in perms:
            assert response.status_code != 403 and not is_sign_in_redirect(response, url), (
                f"{url} ({route.key}) refuses {role}, whose role grants {perm!r}"
            )
        else:
            assert response.status_code == 403, (
                f"{url} ({route.key}) needs {perm!r} but let {role} in (got {response.status_code})"
            )


def test_no_operator_url_opens_to_an_owner_before_two_factor_sign_in(db, settings):
    settings.TIDINGS_REQUIRE_2FA = "privileged"
    client = Client()
    sign_in(client, make_operator("unverified-owner", "owner"), second_factor=False)
    operator_routes = [r for r in ROUTES if hasattr(r.callback, "operator_permission")]

    let_in = []
    for route in operator_routes:
        response = request(client, route.example_url())
        sent_to_enrol = response.status_code == 302 and response.url.startswith(
            "/account/two-factor/"
        )
        if route.callback.operator_second_factor and not sent_to_enrol:
            let_in.append(f"{route.route} ({response.status_code})")
        if not route.callback.operator_second_factor:  # the enrolment pages themselves
            assert response.status_code != 403 and not is_sign_in_redirect(response, "")

    assert len(operator_routes) > 50
    assert let_in == [], "these operator pages let an owner in before two-factor sign-in"


# --- the walk itself fails on a view nobody protected ----------------------------------------


def forgotten_view(request):
    return HttpResponse("contacts, for anyone")


def test_a_view_without_a_decorator_and_not_on_the_allow_list_fails_the_walk(settings):
    broken = URLResolver(re.compile("^"), [path("audience/everyone/", forgotten_view, name="x")])
    (route,) = walk(broken, ns="audience")

    with pytest.raises(AssertionError) as failure:
        classify(route)

    assert "audience/everyone/" in str(failure.value)
    assert "@operator_required(perm=...)" in str(failure.value)
    assert "PUBLIC in tests/web/test_access_rules.py" in str(failure.value)


def test_a_bare_operator_view_that_shows_data_fails_the_walk():
    from tidings.lib.access import operator_required

    bare = operator_required(forgotten_view)
    broken = URLResolver(re.compile("^"), [path("crm/everyone/", bare, name="everyone")])
    (route,) = walk(broken, ns="crm")

    with pytest.raises(AssertionError, match="name the permission it needs"):
        classify(route)


# --- CSRF: every form is protected except the few that cannot be -----------------------------

CSRF_EXEMPT: dict[str, str] = {
    "public:signup": "embedded sign-up forms post from the controller's own website "
    "(cross-site by design; double opt-in and rate limits protect it)",
    "public:unsubscribe": "RFC 8058 one-click unsubscribe: mail clients POST without a token",
    "analytics_public:collect": "cross-site beacon from the controller's website; it uses no "
    "cookie or session, so there is nothing for CSRF to abuse",
    "analytics_public:consent": "cookie-banner answer from the controller's website; no cookie "
    "or session either",
}
CSRF_EXEMPT_PREFIXES: dict[str, str] = {
    "api/": "REST API: token in the Authorization header, no cookies",
    "webhooks/": "provider webhooks, verified by their signatures",
}


def test_only_the_allow_listed_views_skip_csrf_protection():
    exempt = {
        r.key
        for r in ROUTES
        if getattr(r.callback, "csrf_exempt", False)
        and not any(r.route.startswith(p) for p in CSRF_EXEMPT_PREFIXES)
    }

    assert exempt <= set(CSRF_EXEMPT), (
        f"{sorted(exempt - set(CSRF_EXEMPT))} skip CSRF protection: remove @csrf_exempt, or add "
        "them to CSRF_EXEMPT in tests/web/test_access_rules.py with the reason (RFC 8058 "
        "one-click POST and signed webhooks are the only expected cases)"
    )
