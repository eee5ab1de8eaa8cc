"""The circuit breaker: pause a campaign whose recent attempts mostly failed.

Per campaign, over its last ``TIDINGS_BREAKER_WINDOW`` (default 100) attempts in a worker: when at
least ``TIDINGS_BREAKER_MIN`` (default 20) were made and more than ``TIDINGS_BREAKER_THRESHOLD``
(default 0.5) of them failed in any way, the campaign is paused with a reason saying what failed
("SMTP server unreachable: …", "rejected: 550 …").  The engine asks the lifecycle to pause it.
"""

from __future__ import annotations

import collections

from ..config import DeliveryConfig


class Breaker:
    """Per campaign: the last ``window`` attempts, and what went wrong with each that failed."""

    def __init__(self, config: DeliveryConfig | None = None) -> None:
        config = config or DeliveryConfig.from_settings()
        self.window = config.breaker_window
        self.minimum = config.breaker_min
        self.threshold = config.breaker_threshold
        self.outcomes: dict[int, collections.deque[str | None]] = {}

    def record(self, campaign_id: int, error: str | None) -> None:
        """One attempt: ``error`` None if it went through."""
        outcomes = self.outcomes.setdefault(campaign_id, collections.deque(maxlen=self.window))
        outcomes.append(error)

    def tripped(self, campaign_id: int) -> str | None:
        """The pause reason if the campaign's error rate is over the threshold, else None."""
        outcomes = self.outcomes.get(campaign_id)
        if not outcomes or len(outcomes) < self.minimum:
            return None
        errors = [error for error in outcomes if error is not None]
        if len(errors) / len(outcomes) <= self.threshold:
            return None
        common = collections.Counter(errors).most_common(1)[0][0]
        return (
            f"Paused automatically: {len(errors)} of the last {len(outcomes)} messages failed "
            f"({common})"
        )

    def reset(self, campaign_id: int) -> None:
        self.outcomes.pop(campaign_id, None)
