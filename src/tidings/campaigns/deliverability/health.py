"""The result of a domain's checks, as stored on a sender and shown on its page (no import of
the DNS libraries: pages and tasks read results without paying for checkdmarc's import)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

PASS, WARN, FAIL, UNKNOWN, INFO, NOT_APPLICABLE = "pass", "warn", "fail", "unknown", "info", "na"


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    status: str  # PASS | WARN | FAIL | UNKNOWN | INFO | NOT_APPLICABLE
    required: bool
    detail: str  # what was found
    fix: str = ""  # one sentence: what to publish (when it did not pass)

    @property
    def ok(self) -> bool:
        return self.status in (PASS, WARN, INFO, NOT_APPLICABLE)


@dataclass
class DomainHealth:
    domain: str
    selector: str
    checks: list[Check] = field(default_factory=list)
    checked_at: datetime = field(default_factory=timezone.now)
    sending_ips: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        """Required checks that failed: the domain is not ready to send bulk mail."""
        return [c for c in self.checks if c.required and c.status == FAIL]

    @property
    def unknown(self) -> list[Check]:
        return [c for c in self.checks if c.status == UNKNOWN]

    @property
    def status(self) -> str:
        """FAIL if a required check failed; else UNKNOWN if one could not be made; else PASS."""
        if self.failed:
            return FAIL
        if any(c.required for c in self.unknown):
            return UNKNOWN
        return PASS

    def get(self, key: str) -> Check | None:
        return next((c for c in self.checks if c.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "selector": self.selector,
            "checked_at": self.checked_at.isoformat(),
            "sending_ips": self.sending_ips,
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DomainHealth:
        return cls(
            domain=data["domain"],
            selector=data.get("selector", ""),
            checked_at=datetime.fromisoformat(data["checked_at"]),
            sending_ips=list(data.get("sending_ips", [])),
            checks=[Check(**c) for c in data.get("checks", [])],
        )
