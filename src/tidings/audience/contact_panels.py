"""Sections other apps add to the operator's contact page.

The audience app is below the others in the layers, so its contact page cannot import what they
hold about a person (the campaigns sent to them, say).  An app registers a section when it starts
(``AppConfig.ready``): a template and a function of the contact returning the template's context
(the template sees it as ``panel``).  Sections show in the order they were registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models import Contact


@dataclass(frozen=True)
class Panel:
    template: str
    context: Callable[[Contact], dict[str, Any]]


_PANELS: dict[str, Panel] = {}


def register(template: str, context: Callable[[Contact], dict[str, Any]]) -> None:
    """Add (or replace) the section drawn by ``template``."""
    _PANELS[template] = Panel(template, context)


def panels_for(contact: Contact) -> list[tuple[str, dict[str, Any]]]:
    """Each registered section's template and its context for ``contact``."""
    return [(panel.template, panel.context(contact)) for panel in _PANELS.values()]
