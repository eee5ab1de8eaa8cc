import pytest

import tidings.policy


@pytest.fixture(autouse=True)
def fresh_policy():
    """Every test loads settings.TIDINGS_POLICY afresh, and leaves no policy cached behind it."""
    tidings.policy._load.cache_clear()
    yield
    tidings.policy._load.cache_clear()
