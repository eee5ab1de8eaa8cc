"""What a delivery worker publishes on its heartbeat row, for /metrics and the doctor.

Some numbers live only in a worker's memory: how many messages it handed to each transport, the
circuit breaker's recent failure ratio per campaign, which campaigns cannot reach their server.
A scrape of one web process cannot see them, so each worker writes a small JSON snapshot on its
``DeliveryWorker`` row with every heartbeat (every lease/6 seconds, 5 s by default): no extra
query, one more column in the UPDATE it already makes.  ``tidings.ops.metrics`` reads the rows of
the workers seen recently.

Counters are cumulative for the life of the worker process (a restarted worker starts a new row
at zero): in Prometheus, ``rate()`` over the per-worker series gives the cluster's rate.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from typing import Any

OUTCOMES = ("sent", "failed", "retry", "skipped")


class WorkerState:
    def __init__(self) -> None:
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.last_sent = 0
        self.last_at = time.monotonic()

    def record(self, results: Iterable[Any]) -> None:
        """Count a batch of ``delivery.Result`` just written."""
        for result in results:
            if result.outcome in OUTCOMES:
                self.counts[(result.transport or "-", result.outcome)] += 1

    def snapshot(self, engine: Any) -> dict[str, Any]:
        """The JSON stored on the heartbeat row (small: a few hundred bytes)."""
        now = time.monotonic()
        sent = sum(n for (_, outcome), n in self.counts.items() if outcome == "sent")
        elapsed = max(now - self.last_at, 1e-6)
        rate = (sent - self.last_sent) / elapsed
        self.last_sent, self.last_at = sent, now
        transports: dict[str, dict[str, int]] = {}
        for (transport, outcome), n in sorted(self.counts.items()):
            transports.setdefault(transport, {})[outcome] = n
        breaker = engine.breaker
        breakers = {}
        for campaign_id, outcomes in breaker.outcomes.items():
            if outcomes:
                failures = sum(1 for error in outcomes if error is not None)
                breakers[str(campaign_id)] = [len(outcomes), failures]
        return {
            "transports": transports,
            "rate": round(rate, 2),
            "breaker": {
                "threshold": breaker.threshold,
                "min": breaker.minimum,
                "campaigns": breakers,
            },
            "unreachable": sorted(str(c) for c in engine.unreachable),
            "auto_paused": len(engine.stats.paused),
            "holding": engine.outstanding + len(engine.pending),
        }
