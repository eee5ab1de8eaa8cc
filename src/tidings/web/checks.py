"""System checks for sign-in security settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Warning, register


@register("security", deploy=True)
def two_factor_required_in_production(app_configs, **kwargs):
    if getattr(settings, "PRODUCTION", False) and settings.TIDINGS_REQUIRE_2FA == "none":
        return [
            Warning(
                "TIDINGS_REQUIRE_2FA=none: owners and privacy officers can export personal data "
                "with a password alone.",
                hint="Use privileged (the default) or all.",
                id="tidings.W201",
            )
        ]
    return []
