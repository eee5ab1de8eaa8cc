"""Formatting for report pages."""

from django import template

register = template.Library()


@register.filter
def percent(rate: float | None) -> str:
    """0.0123 → "1.2%"; small rates keep two decimals (0.0012 → "0.12%") for complaint limits."""
    if rate is None:
        return "—"
    value = rate * 100
    return f"{value:.2f}%" if value < 1 else f"{value:.1f}%"
