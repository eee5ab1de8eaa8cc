"""Segments: the engagement functions other apps provide (``engagement.register``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db.models import (
    Q,
)
from django.db.models.expressions import Expression

if TYPE_CHECKING:
    pass

from .syntax import (
    ENGAGEMENT_FUNCTIONS,
)

# --- engagement ---------------------------------------------------------------------------------
EngagementProvider = Callable[..., Q | Expression]


class EngagementRegistry:
    """Where the campaigns app plugs in the data behind ``opened_in(90d)`` and friends.

    A provider is called as ``provider(since=<aware datetime>)`` and returns a condition on
    ``Contact`` (a ``Q`` or a boolean expression) that is true for the contacts with that kind of
    engagement since then.  It must not join: use ``Exists(...)`` subqueries, so a contact with
    many events still counts once.  Register in ``AppConfig.ready()``::

        engagement.register("opened_in", lambda since: Q(Exists(opens_since(since))))
    """

    def __init__(self) -> None:
        self._providers: dict[str, EngagementProvider] = {}

    def register(self, name: str, provider: EngagementProvider) -> None:
        if name not in ENGAGEMENT_FUNCTIONS:
            raise ValueError(
                f'"{name}" is not an engagement function (known: {", ".join(ENGAGEMENT_FUNCTIONS)})'
            )
        self._providers[name] = provider

    def unregister(self, name: str) -> None:
        self._providers.pop(name, None)

    def provider(self, name: str) -> EngagementProvider | None:
        return self._providers.get(name)


engagement = EngagementRegistry()
