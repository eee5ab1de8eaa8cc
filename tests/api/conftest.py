import pytest


@pytest.fixture(autouse=True)
def _webhook_receivers_connected():
    """Some tests elsewhere clear a signal's receivers (``receivers.clear()``); the webhook
    receivers are connected again (idempotently) so these tests do not depend on the order."""
    from tidings.api.webhooks import connect_signals

    connect_signals()
