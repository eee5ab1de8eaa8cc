"""How hard the property tests look: one hypothesis profile per occasion.

- ``dev`` (a plain ``pytest``): hypothesis' own defaults, 100 examples a property.
- ``ci`` (``make test``): a quarter of that, so both databases run in a few minutes; still
  deterministic enough to catch regressions, and seeded afresh each run.
- ``deep`` (``make test-deep``, nightly): ten times the default, for the bugs that hide in rare
  inputs.

Choose one with ``pytest --hypothesis-profile=ci`` (hypothesis' pytest option).  A property that
needs more or fewer examples than others says so relative to the default with ``examples(n)``,
which scales ``n`` by the profile: ``@settings(max_examples=examples(1000))`` runs 1,000 examples
under ``dev``, 250 under ``ci`` and 10,000 under ``deep``.  No profile sets a deadline: the
machines that run CI are shared, and a slow example is not a wrong one.
"""

from __future__ import annotations

from hypothesis import settings

DEFAULT_EXAMPLES = 100

settings.register_profile("dev", max_examples=DEFAULT_EXAMPLES, deadline=None)
settings.register_profile("ci", max_examples=DEFAULT_EXAMPLES // 4, deadline=None)
settings.register_profile("deep", max_examples=DEFAULT_EXAMPLES * 10, deadline=None)
settings.load_profile("dev")


def examples(n: int) -> int:
    """``n`` examples at the default budget, scaled by the profile in force (at least 2)."""
    return max(2, n * settings.default.max_examples // DEFAULT_EXAMPLES)
