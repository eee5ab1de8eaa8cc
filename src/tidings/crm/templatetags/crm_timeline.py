"""``{% load crm_timeline %}{% contact_timeline contact %}``: the CRM's timeline of a person on
pages the CRM does not own (the contact page), without their app importing the CRM."""

from __future__ import annotations

from typing import Any

from django import template

from ..timeline import contact_timeline as build_contact_timeline
from ..timeline import organisation_timeline as build_organisation_timeline

register = template.Library()


@register.inclusion_tag("crm/_timeline.html")
def contact_timeline(contact: Any) -> dict[str, Any]:
    return {"lines": build_contact_timeline(contact), "about": "this person"}


@register.inclusion_tag("crm/_timeline.html")
def organisation_timeline(organisation: Any) -> dict[str, Any]:
    return {"lines": build_organisation_timeline(organisation), "about": "this organisation"}
