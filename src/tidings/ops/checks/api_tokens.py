"""API tokens: the ones about to expire (a program that uses one stops working then), and the
ones made without an expiry (they work until someone revokes them)."""

from __future__ import annotations

from django.utils import timezone

from tidings.api.auth import EXPIRY_WARNING
from tidings.api.models import ApiToken
from tidings.ops.doctor import OK, WARN, Finding, register

SHOWN = 10  # tokens named in one finding; the page lists them all


@register("api tokens", order=90)
def check_api_tokens() -> Finding:
    now = timezone.now()
    live = ApiToken.objects.filter(revoked_at__isnull=True)
    soon = list(
        live.filter(expires_at__gt=now, expires_at__lte=now + EXPIRY_WARNING)
        .order_by("expires_at", "pk")
        .values_list("name", "prefix", "expires_at")
    )
    never = live.filter(expires_at__isnull=True).count()
    one = never == 1
    never_note = (
        f"; {never} never expire{'s' if one else ''} (replace {'it' if one else 'them'} with "
        "tokens that do)"
        if never
        else ""
    )
    if soon:
        names = ", ".join(
            f"“{name}” ({prefix}…) on {timezone.localtime(at):%-d %b %Y}"
            for name, prefix, at in soon[:SHOWN]
        )
        more = f" and {len(soon) - SHOWN} more" if len(soon) > SHOWN else ""
        return Finding(
            "api tokens",
            WARN,
            f"{len(soon)} API token{'s expire' if len(soon) != 1 else ' expires'} within "
            f"{EXPIRY_WARNING.days} days: {names}{more}{never_note}",
            "make a new token under Settings → API tokens, give it to the program that uses the "
            "old one, then revoke the old one",
        )
    if never:
        return Finding(
            "api tokens",
            WARN,
            f"no API token expires within {EXPIRY_WARNING.days} days{never_note}",
            "make a new token with an expiry under Settings → API tokens, then revoke the old one",
        )
    return Finding("api tokens", OK, f"no API token expires within {EXPIRY_WARNING.days} days")
