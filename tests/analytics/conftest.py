from __future__ import annotations

from pathlib import Path

import pytest

from tidings.policy import load_policy
from tidings.policy.commands import EXAMPLE_POLICY

EXAMPLE_TEXT = EXAMPLE_POLICY.read_text(encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the example policy"
    return text.replace(old, new)


@pytest.fixture
def use_policy(tmp_path, settings):
    """Point the installation at a policy file with the given text."""

    def use(text: str) -> Path:
        file = tmp_path / "policy.toml"
        file.write_text(text, encoding="utf-8")
        settings.TIDINGS_POLICY = file
        load_policy(file)  # fail here, clearly, if a test wrote an invalid policy
        return file

    return use


#: The example policy with analytics on legitimate interests: no consent needed for statistics.
ANALYTICS_WITHOUT_CONSENT = replace_once(
    EXAMPLE_TEXT,
    'lawful_basis = "consent"\ncollects = { required = [], optional = ["pages_visited"',
    'lawful_basis = "legitimate_interests"\n'
    'legitimate_interest = "counting visits, which identifies nobody"\n'
    'collects = { required = [], optional = ["pages_visited"',
)


CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def ingest_now(settings):
    """Page views wait in the ingest buffer as in production; ``ingest_now()`` writes them."""
    from tidings.lib import ingest

    settings.TIDINGS_INGEST_FLUSH_SECONDS = 0
    settings.TIDINGS_REDIS_URL = ""
    ingest.flush()
    return ingest.flush


@pytest.fixture
def fresh_salt():
    from tidings.analytics.salts import forget_cached_salt

    forget_cached_salt()
    yield
    forget_cached_salt()
