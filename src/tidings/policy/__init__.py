"""Policy as code: the privacy policy as a validated, immutable object the whole product obeys."""

from __future__ import annotations

from functools import cache

from .loader import PolicyError, Problem, load_policy, parse_policy
from .schema import Policy

__all__ = ["Policy", "PolicyError", "Problem", "get_policy", "load_policy", "parse_policy"]


@cache
def _load(path: str) -> Policy:
    return load_policy(path)


def forget_policy(*, setting: str = "TIDINGS_POLICY", **_: object) -> None:
    """Load the policy afresh next time: connected to Django's ``setting_changed`` (a test or
    ``override_settings`` pointing TIDINGS_POLICY at another file, or at a rewritten one)."""
    if setting == "TIDINGS_POLICY":
        _load.cache_clear()


def get_policy() -> Policy:
    """The installation's policy (settings.TIDINGS_POLICY), loaded once per process."""
    from django.conf import settings

    return _load(str(settings.TIDINGS_POLICY))
