from __future__ import annotations

from pathlib import Path

import pytest

import tidings.policy
from tidings.policy import load_policy
from tidings.policy.commands import EXAMPLE_POLICY

EXAMPLE_TEXT = EXAMPLE_POLICY.read_text(encoding="utf-8")


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the example policy"
    return text.replace(old, new)


@pytest.fixture(autouse=True)
def fresh_policy():
    """Every test loads settings.TIDINGS_POLICY afresh, and leaves no policy cached behind it."""
    tidings.policy._load.cache_clear()
    yield
    tidings.policy._load.cache_clear()


@pytest.fixture
def use_policy(tmp_path, settings):
    """Point the installation at a policy file with the given text."""

    def use(text: str) -> Path:
        file = tmp_path / "policy.toml"
        file.write_text(text, encoding="utf-8")
        settings.TIDINGS_POLICY = file
        tidings.policy._load.cache_clear()
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
