"""Fixtures shared by the tests of the public pages (sign-up, confirmation, preferences,
unsubscribe, the consent ledger)."""

import pytest

from tests.audience.public_helpers import make_list, reset, use_outbox


@pytest.fixture
def public_pages(settings):
    """Mail through the embedded outbox; rate limits and the loaded policy forgotten around the
    test.  Modules of public-page tests use it with ``pytest.mark.usefixtures``."""
    use_outbox(settings)
    reset()
    yield
    reset()


@pytest.fixture
def news():
    return make_list("Product news", "product news")


@pytest.fixture
def events():
    return make_list("Events", "events and webinars")
