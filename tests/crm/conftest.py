import pytest

from tests.audience.public_helpers import reset

from .helpers import SUPPORT


@pytest.fixture
def support_address(settings):
    """The CRM's support address set, with the public rate limits reset before and after."""
    reset()
    settings.TIDINGS_SUPPORT_ADDRESS = SUPPORT
    yield SUPPORT
    reset()


@pytest.fixture
def engine_builds(monkeypatch):
    """Screening's engine as a process that has not screened yet: each time it is built, whether
    that happened inside a transaction the code under test opened (True) or before (False)."""
    from django.db import connection

    from tidings.policy import screening

    outside = len(connection.atomic_blocks)  # the test's own transaction
    built_inside_a_transaction: list[bool] = []
    build = screening.Screener._get_engine

    def recording(self):
        if self._engine is None:
            built_inside_a_transaction.append(len(connection.atomic_blocks) > outside)
        return build(self)

    monkeypatch.setattr(screening.Screener, "_get_engine", recording)
    monkeypatch.setattr(screening, "_default", None)
    return built_inside_a_transaction
