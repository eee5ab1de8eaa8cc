"""Retention periods: parsing "12 months" and evaluating them against a record's clocks.

Calendar arithmetic is python-dateutil's ``relativedelta``: "1 month after 31 January" is
28/29 February, never 3 March.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from dateutil.relativedelta import relativedelta

Unit = Literal["days", "weeks", "months", "years"]
_UNITS: dict[str, Unit] = {
    "day": "days",
    "days": "days",
    "week": "weeks",
    "weeks": "weeks",
    "month": "months",
    "months": "months",
    "year": "years",
    "years": "years",
}
_DURATION_RE = re.compile(r"^\s*(\d{1,4})\s+([a-z]+)\s*$")

Moment = date | datetime


@dataclass(frozen=True, order=True)
class Duration:
    amount: int
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse "12 months", "6 years", "30 days", "2 weeks" (singular or plural)."""
        match = _DURATION_RE.match(text.lower())
        if not match or match.group(2) not in _UNITS:
            raise ValueError(
                f'"{text}" is not a period: write a number and a unit, like "12 months" '
                "(units: days, weeks, months, years)"
            )
        amount = int(match.group(1))
        if amount <= 0:
            raise ValueError(f'"{text}": a retention period must be longer than zero')
        return cls(amount, _UNITS[match.group(2)])

    @property
    def delta(self) -> relativedelta:
        units: dict[str, Any] = {self.unit: self.amount}
        return relativedelta(**units)

    def after(self, moment: Moment) -> Moment:
        return moment + self.delta

    def __str__(self) -> str:
        unit = self.unit[:-1] if self.amount == 1 else self.unit
        return f"{self.amount} {unit}"


def _comparable(moment: Moment) -> datetime:
    """Dates and aware datetimes mixed in one comparison: a date counts as its midnight (UTC)."""
    if isinstance(moment, datetime):
        return moment
    from datetime import UTC, time

    return datetime.combine(moment, time.min, tzinfo=UTC)


def first_of(moments: Iterable[Moment | None]) -> Moment | None:
    """The earliest of the clocks that have started (None while none has)."""
    started = [m for m in moments if m is not None]
    return min(started, key=_comparable) if started else None


def last_of(moments: Iterable[Moment | None]) -> Moment | None:
    """The latest clock, but only once every clock has started."""
    values = list(moments)
    if not values or any(m is None for m in values):
        return None
    return max(values, key=_comparable)  # type: ignore[arg-type]


def start_of(
    clocks: Mapping[str, Moment | None], names: tuple[str, ...], combine: Literal["first", "last"]
) -> Moment | None:
    picked = [clocks.get(name) for name in names]
    return first_of(picked) if combine == "first" else last_of(picked)
