import pytest
from django.contrib.auth import get_user_model

OPERATOR_PASSWORD = "correct horse battery staple"


@pytest.fixture
def owner(db):
    """The operator who set tidings up: a superuser."""
    return get_user_model().objects.create_superuser(
        "owner", "owner@example.co.uk", OPERATOR_PASSWORD
    )


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _second_factor_only_where_tested(settings):
    # Tests sign operators in with force_login and are about other things than signing in; the
    # second factor (on by default for owners and privacy officers) is proven where it is the
    # subject: tests/web/test_two_factor.py, test_access_rules.py and tests/e2e/test_operator_2fa.py
    # set TIDINGS_REQUIRE_2FA back to "privileged" (see tests.operators.sign_in).
    settings.TIDINGS_REQUIRE_2FA = "none"


@pytest.fixture(autouse=True)
def _ingest_without_timer(settings):
    # Buffered ingest (web/ingest.py) without its background thread: a test writes the rows by
    # calling flush(), in its own thread and transaction.  Rows a test left unflushed are dropped
    # so nothing is written after the test database is gone.
    from tidings.web import ingest

    settings.TIDINGS_INGEST_FLUSH_SECONDS = 0
    yield
    with ingest._lock:
        ingest._buffers.clear()
