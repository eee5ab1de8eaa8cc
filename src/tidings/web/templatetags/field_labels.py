"""``{{ "job_title"|field_title }}`` → "Job title": a policy field's name in words."""

from django import template

from tidings.policy.plain import field_title as _field_title

register = template.Library()


@register.filter
def field_title(name: str) -> str:
    return _field_title(str(name))
