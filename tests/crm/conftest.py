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
