import pytest
import time_machine

from tests.audience.public_helpers import reset, use_outbox

from .helpers import NOW


@pytest.fixture(autouse=True)
def _outbox_and_clean_limits(settings):
    use_outbox(settings)
    reset()
    yield
    reset()


@pytest.fixture
def monday():
    """The clock at Monday 23 November 2026, 07:00 UTC, and running."""
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller
