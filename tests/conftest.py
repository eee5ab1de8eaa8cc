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
def _ingest_without_timer(settings):
    # Buffered ingest (web/ingest.py) without its background thread: a test writes the rows by
    # calling flush(), in its own thread and transaction.  Rows a test left unflushed are dropped
    # so nothing is written after the test database is gone.
    from tidings.web import ingest

    settings.TIDINGS_INGEST_FLUSH_SECONDS = 0
    yield
    with ingest._lock:
        ingest._buffers.clear()
