"""schemathesis against the API's own OpenAPI schema, in-process (WSGI): no request it
generates, valid or not, may make the server fail (5xx) or answer what the schema does not
describe (status, content type, headers, body).  Bounded: a few examples an operation,
so it stays well under a minute in the normal suite."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hypothesis_profiles import examples

from .helpers import token_for

# An operation; the ci profile keeps these 4 (fewer would leave most answers 4xx), deep has 40.
EXAMPLES = max(4, examples(4))

# No server error, and every answer (errors included) is one the schema describes: its status,
# content type, headers and body.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_schema(db, settings, tmp_path, keep_test_transaction):
    from django.core.wsgi import get_wsgi_application

    settings.TIDINGS_API_RATE_LIMIT = 0
    settings.DATA_DIR = tmp_path  # uploads of the import endpoint land here
    return schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


@pytest.fixture
def bearer(db):
    return {"Authorization": f"Bearer {token_for('owner')}"}


@pytest.fixture
def keep_test_transaction():
    """The WSGI handler closes the connection after each request (as a server should); inside a
    test's transaction that would lose it, so do what Django's test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_no_request_makes_the_api_fail(api_schema, bearer, keep_test_transaction):
    # One test walking every operation (schemathesis' pytest loader does not run under this
    # pytest): each gets its own bounded hypothesis run, and a failure names the operation.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    statuses: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            response = case.call_and_validate(headers=bearer, checks=CHECKS)
            statuses.append(response.status_code)

        try:
            run()
        except Exception as exc:
            raise AssertionError(f"{operation.label}: {exc}") from exc

    # The fuzzer got past authentication and reached the endpoints themselves.
    assert 401 not in statuses
    assert sum(200 <= s < 300 for s in statuses) >= 10
