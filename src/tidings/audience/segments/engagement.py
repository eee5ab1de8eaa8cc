"""Segments: the engagement functions other apps provide (``engagement.register``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

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

    Another app whose mail counts too (journeys) ``add``s a provider: a contact matches when
    any of the function's providers says so (their conditions are ORed).
    """

    def __init__(self) -> None:
        self._providers: dict[str, EngagementProvider] = {}
        self._added: dict[str, list[EngagementProvider]] = {}

    @staticmethod
    def _check(name: str) -> None:
        if name not in ENGAGEMENT_FUNCTIONS:
            raise ValueError(
                f'"{name}" is not an engagement function (known: {", ".join(ENGAGEMENT_FUNCTIONS)})'
            )

    def register(self, name: str, provider: EngagementProvider) -> None:
        self._check(name)
        self._providers[name] = provider

    def add(self, name: str, provider: EngagementProvider) -> None:
        """One more source of the same engagement (ORed with the registered one)."""
        self._check(name)
        added = self._added.setdefault(name, [])
        if provider not in added:
            added.append(provider)

    def unregister(self, name: str) -> None:
        """Forget every provider of ``name`` (the registered one and the added ones)."""
        self._providers.pop(name, None)
        self._added.pop(name, None)

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Put every provider back as it was when the block ends, whatever the block registered,
        added or unregistered (for tests that swap the providers)."""
        providers, added = dict(self._providers), {k: list(v) for k, v in self._added.items()}
        try:
            yield
        finally:
            self._providers, self._added = providers, added

    def provider(self, name: str) -> EngagementProvider | None:
        main = self._providers.get(name)
        parts = [p for p in (main, *self._added.get(name, ())) if p is not None]
        if len(parts) <= 1:
            return parts[0] if parts else None

        def any_of(*, since: Any) -> Q:
            condition = Q()
            for part in parts:
                found = part(since=since)
                condition |= found if isinstance(found, Q) else Q(found)
            return condition

        return any_of


engagement = EngagementRegistry()
