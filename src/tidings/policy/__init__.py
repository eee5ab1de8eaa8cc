"""Policy as code: the privacy policy as a validated, immutable object the whole product obeys."""

from __future__ import annotations

from functools import cache

from .loader import PolicyError, Problem, load_policy, parse_policy
from .schema import Policy

__all__ = ["Policy", "PolicyError", "Problem", "get_policy", "load_policy", "parse_policy"]


@cache
def _load(path: str) -> Policy:
    return load_policy(path)


def get_policy() -> Policy:
    """The installation's policy (settings.TIDINGS_POLICY), loaded once per process."""
    from django.conf import settings

    return _load(str(settings.TIDINGS_POLICY))
