"""Every API route lets in exactly the roles the operator pages let in.

The walk reads the routes from the OpenAPI schema (so a route added on any branch is covered the
moment it is merged), finds each one's operator page — the ``page=`` its ``need(...)`` names —
and reads that page's permission from its ``@operator_required(perm=...)`` wrapper, the same rule
``tests/web/test_access_rules.py`` proves the pages keep.  Then it calls the route with a token of
every role (holding every scope) and fails on any difference: a role the page refuses must get
403, a role it lets in must not.

A route with no operator page names its permission and the reason itself
(``need(scope, perm=..., no_page=...)``), and must be on ``NO_PAGE`` below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.urls import get_resolver

from tidings.api.api import api
from tidings.api.auth import TokenAuth
from tidings.lib.access import ROLES

from .helpers import Api, token_for

pytestmark = pytest.mark.django_db

# Routes with no operator page → why the permission they name is the right one.
NO_PAGE: dict[str, str] = {
    "POST /tx": "transactional mail is sent only through the API; 'send' is the permission the "
    "roles document for it (tidings.lib.access)",
    "POST /events": "custom events come only from other systems; they are facts about people, "
    "so 'people', as for the contacts they are about",
}

HOW_TO_FIX = (
    "Give the route's auth the operator page that does the same thing: "
    "auth=need(<scope>, page='<url name of the page>'), so the API asks for the page's own "
    "permission; if no page does it, need(<scope>, perm=..., no_page='why') and add the route to "
    "NO_PAGE in tests/api/test_access_rules.py."
)


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str  # "/segments/count", as in the OpenAPI schema (without /api)
    operation_id: str

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def example_path(self) -> str:
        return re.sub(r"\{\w+\}", "1", self.path)


def schema_routes() -> list[ApiRoute]:
    schema = api.get_openapi_schema(path_prefix="")
    routes = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            routes.append(ApiRoute(method.upper(), path, operation["operationId"]))
    return routes


def auth_of(route: ApiRoute) -> TokenAuth:
    """The TokenAuth the route's operation was declared with (a HEAD: its GET's)."""
    operation_id = route.operation_id
    if route.method == "HEAD":
        operation_id = operation_id.removesuffix("_head")
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                if api.get_openapi_operation_id(operation) == operation_id:
                    auths = [a for a in operation.auth_callbacks if isinstance(a, TokenAuth)]
                    assert len(auths) == 1, f"{route.key} must have exactly one need(...) auth"
                    return auths[0]
    raise AssertionError(f"{route.key}: no operation {route.operation_id} in the routers")


def page_permission(url_name: str) -> str | None:
    """The permission the operator page called ``url_name`` requires (walking the URL resolver,
    independently of the code under test)."""
    namespace, _, name = url_name.rpartition(":")
    resolver = get_resolver()
    for part in filter(None, namespace.split(":")):
        resolver = resolver.namespace_dict[part][1]
    for pattern, callback in _patterns(resolver):
        if pattern == name:
            return callback.operator_permission
    raise AssertionError(f"no URL named {url_name!r}")


def _patterns(resolver):
    from django.urls import URLPattern, URLResolver

    for entry in resolver.url_patterns:
        if isinstance(entry, URLPattern):
            yield entry.name, entry.callback
        elif isinstance(entry, URLResolver) and not entry.namespace:
            yield from _patterns(entry)


def expected_permission(route: ApiRoute) -> str:
    auth = auth_of(route)
    page = getattr(auth, "page", None)
    if page:
        perm = page_permission(page)
        assert perm, f"{route.key}: the page {page} is open to every operator. {HOW_TO_FIX}"
        return perm
    assert route.key in NO_PAGE, f"{route.key} names no operator page. {HOW_TO_FIX}"
    return auth.perm


ROUTES = schema_routes()


@pytest.fixture
def tokens(settings) -> dict[str, Api]:
    settings.TIDINGS_API_RATE_LIMIT = 0
    return {role: Api(token_for(role, username=f"api-walk-{role}")) for role in ROLES}


def call(client: Api, route: ApiRoute):
    path = route.example_path()
    if route.method == "GET":
        return client.get(path)
    if route.method == "HEAD":
        return client.client.head(f"/api{path}", headers=client.headers)
    if route.method == "DELETE":
        return client.delete(path)
    return client._call(route.method.lower(), path, {})


def test_the_walk_sees_every_api_route():
    keys = {r.key for r in ROUTES}
    assert {"POST /segments/count", "GET /contacts", "POST /tx", "GET /campaigns"} <= keys
    assert len(ROUTES) >= 29


@pytest.mark.parametrize("route", ROUTES, ids=[r.key for r in ROUTES])
def test_every_api_route_lets_in_exactly_the_roles_its_operator_page_lets_in(
    route: ApiRoute, tokens: dict[str, Api]
):
    perm = expected_permission(route)
    differences = []
    for role, client in tokens.items():
        response = call(client, route)
        allowed = perm in ROLES[role]
        if allowed and response.status_code in {401, 403}:
            differences.append(f"{role} is refused ({response.status_code}) but may use the page")
        if not allowed and response.status_code != 403:
            differences.append(
                f"{role} gets {response.status_code}, but the page needs {perm!r}, which the "
                f"{role} role lacks"
            )
    assert differences == [], f"{route.key}: " + "; ".join(differences)


def test_no_page_lists_only_routes_that_exist():
    assert set(NO_PAGE) <= {r.key for r in ROUTES}


def test_an_analyst_token_cannot_probe_personal_data_through_segment_counts(tokens):
    from tests.campaigns.lifecycle_helpers import person

    person("Ada Lovelace")
    for query in ('email = "ada.lovelace@example.com"', 'name ^= "Ada L"'):
        response = tokens["analyst"].post("/segments/count", {"query": query})
        assert response.status_code == 403
        assert "count" not in response.json()
    assert tokens["editor"].post("/segments/count", {"query": 'name ^= "Ada L"'}).json() == {
        "count": 1
    }


def test_a_route_naming_no_real_page_fails_the_start_up_check():
    from django.core.exceptions import ImproperlyConfigured

    from tidings.api.auth import check_route_permissions

    assert check_route_permissions() == []
    with pytest.raises(ImproperlyConfigured, match="no operator page is called audience:nosuch"):
        TokenAuth("read", page="audience:nosuch").perm  # noqa: B018
    with pytest.raises(ImproperlyConfigured, match="names no permission"):
        TokenAuth("read", page="web:dashboard").perm  # noqa: B018
    with pytest.raises(ValueError):
        TokenAuth("read", perm="people")  # a permission without the reason there is no page
