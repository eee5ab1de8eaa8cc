import pytest


@pytest.fixture(autouse=True)
def _fresh_journey_link_caches():
    """Journey ids repeat from one test to the next (each test's rows are rolled back); in a real
    database they never do, so the per-process link tables never need emptying there."""
    from tidings.journeys import tracking

    tracking.forget_links()
