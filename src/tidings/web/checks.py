"""System checks: settings that are wrong for this installation, each with an id and a fix.

Django runs them before ``tidings serve``, ``tidings worker``, ``tidings migrate`` and
``tidings check``, and ``tidings.wsgi``/``tidings.asgi`` run the errors among them before they
serve (``refuse_unsafe_start``), so a server started by another WSGI server is refused too.  The
README lists every id with what it means and how to fix it.

======================  =========================================================================
id                      when
======================  =========================================================================
tidings.E001            production without SECRET_KEY (or its file empty), or a placeholder
tidings.E002            production with a SECRET_KEY shorter than 32 characters
tidings.E003            production with TIDINGS_DEBUG on
tidings.E004            production without TIDINGS_POLICY (the example policy)
tidings.E005            TIDINGS_PENDING_DAYS shorter than TIDINGS_CONFIRM_DAYS
tidings.E006            TIDINGS_REQUIRE_2FA neither privileged, all nor none
tidings.E010            a delivery setting out of range (``campaigns.config.DeliveryConfig``)
tidings.W201            production with TIDINGS_REQUIRE_2FA=none (a deploy check)
======================  =========================================================================
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register, run_checks
from django.core.exceptions import ImproperlyConfigured

from tidings.campaigns.config import DeliveryConfig

TAG = "tidings"


def _secret_key() -> str:
    # Django refuses to hand out an empty SECRET_KEY; here an empty one is what we report.
    try:
        return str(settings.SECRET_KEY)
    except ImproperlyConfigured:
        return ""


def _missing_or_placeholder_key(key: str) -> str:
    """Which of the three it is: never set, an empty file, or a placeholder (never shown)."""
    if key:
        return (
            "SECRET_KEY: production mode refuses to start with a placeholder secret key "
            "(change-me, django-insecure-…)."
        )
    key_file = os.environ.get("SECRET_KEY_FILE")
    if key_file:
        return f"SECRET_KEY_FILE: {key_file} is empty; production mode needs a secret key."
    return "SECRET_KEY: not set; production mode refuses to start without a secret key."


@register(TAG)
def production_settings(app_configs: Any, **kwargs: Any) -> list[Error]:
    """What production refuses: defaults only fit for one machine, and debug mode."""
    if not getattr(settings, "PRODUCTION", False):
        return []
    errors = []
    key = _secret_key()
    if key.lower() in settings.INSECURE_SECRET_KEYS or key.startswith("django-insecure"):
        errors.append(
            Error(
                _missing_or_placeholder_key(key),
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value, the same on "
                "every machine: python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                id="tidings.E001",
            )
        )
    elif len(key) < 32:
        errors.append(
            Error(
                "SECRET_KEY: must be at least 32 characters in production mode.",
                hint="Use a long random value (50 characters from secrets.token_urlsafe).",
                id="tidings.E002",
            )
        )
    if settings.DEBUG:
        errors.append(
            Error(
                "TIDINGS_DEBUG: debug mode cannot be used with TIDINGS_ENV=production.",
                hint="Unset TIDINGS_DEBUG: debug pages show settings and data to anyone.",
                id="tidings.E003",
            )
        )
    if getattr(settings, "TIDINGS_POLICY_IS_EXAMPLE", False):
        errors.append(
            Error(
                "TIDINGS_POLICY: production mode needs the path of your policy.toml.",
                hint=f"Copy the example policy ({settings.TIDINGS_POLICY}), describe your "
                "organisation in it, check it with `tidings policy check FILE`, and set "
                "TIDINGS_POLICY to its path.",
                id="tidings.E004",
            )
        )
    return errors


@register(TAG)
def consistent_settings(app_configs: Any, **kwargs: Any) -> list[Error]:
    """Values each fine alone but impossible together, or outside their choices."""
    errors = []
    if settings.TIDINGS_PENDING_DAYS < settings.TIDINGS_CONFIRM_DAYS:
        errors.append(
            Error(
                "TIDINGS_PENDING_DAYS: must be at least TIDINGS_CONFIRM_DAYS "
                f"({settings.TIDINGS_PENDING_DAYS} < {settings.TIDINGS_CONFIRM_DAYS}).",
                hint="Unconfirmed sign-ups would be deleted while their confirmation link still "
                "works: raise TIDINGS_PENDING_DAYS or lower TIDINGS_CONFIRM_DAYS.",
                id="tidings.E005",
            )
        )
    if settings.TIDINGS_REQUIRE_2FA not in {"privileged", "all", "none"}:
        errors.append(
            Error(
                "TIDINGS_REQUIRE_2FA: expected privileged, all or none, "
                f"got {settings.TIDINGS_REQUIRE_2FA!r}.",
                hint="privileged (the default) requires two-factor sign-in of owners and "
                "privacy officers; all of every operator.",
                id="tidings.E006",
            )
        )
    return errors


@register(TAG)
def delivery_settings(app_configs: Any, **kwargs: Any) -> list[Error]:
    """The delivery engine's settings (``campaigns.config.DeliveryConfig``)."""
    try:
        config = DeliveryConfig.from_settings()
    except ValueError as exc:
        return [Error(str(exc), hint="See the README's delivery settings.", id="tidings.E010")]
    return [
        Error(f"{name}: {problem}.", hint="See the README's delivery settings.", id="tidings.E010")
        for name, problem in config.problems()
    ]


@register("security", deploy=True)
def two_factor_required_in_production(app_configs: Any, **kwargs: Any) -> list[Warning]:
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


def refuse_unsafe_start() -> None:
    """Raise ImproperlyConfigured naming every tidings error check that fails (the WSGI and
    ASGI entry points call it, as the management commands run the checks themselves).

    A check the operator silenced (``SILENCED_SYSTEM_CHECKS``) does not stop start-up, as it
    does not stop ``tidings check``, ``serve`` or ``worker``: ``run_checks`` reports every
    message, and only Django's command runner leaves the silenced ones out."""
    silenced = set(settings.SILENCED_SYSTEM_CHECKS)
    errors = [m for m in run_checks(tags=[TAG]) if m.is_serious() and m.id not in silenced]
    if errors:
        raise ImproperlyConfigured(
            "; ".join(f"({m.id}) {m.msg} {m.hint or ''}".strip() for m in errors)
        )
