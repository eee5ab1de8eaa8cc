"""What is going out now to a saved segment's people, for the segment pages.

The audience app sits below campaigns and journeys, so they tell it (``register``) how to find
their mail that reads a segment: a campaign scheduled, sending or paused chooses its audience
from it when it starts; a started journey triggered by it enrols whoever starts matching it.
Saving or deleting such a segment changes who gets that mail, so, like a template or layout that
mail going out reads, only an operator who may send may do it (``segment_views``).
"""

from __future__ import annotations

from collections.abc import Callable

from .models import Segment

SegmentUses = Callable[[Segment], list[str]]
_FINDERS: list[SegmentUses] = []


def register(find: SegmentUses) -> None:
    """``find(segment)`` names the mail going out that reads the segment ("the campaign “X”")."""
    if find not in _FINDERS:
        _FINDERS.append(find)


def live_uses(segment: Segment) -> list[str]:
    """Every registered app's mail going out that reads ``segment``; [] when none does."""
    names: list[str] = []
    for find in _FINDERS:
        names += find(segment)
    return names
