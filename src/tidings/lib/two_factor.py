"""Who must sign in with a second factor, and the devices that provide it (django-otp).

An operator's second factor is a TOTP authenticator app (``TOTPDevice``) plus ten single-use
recovery codes (one ``StaticDevice``).  A session counts as verified once a code from either was
accepted in it (django-otp keeps the device id in the session; ``request.user.is_verified()``).

``settings.TIDINGS_REQUIRE_2FA`` decides who must enrol: ``privileged`` (the roles that can export
personal data: those holding the ``privacy`` permission), ``all`` operators, or ``none``.  Whatever
the setting, an operator who has enrolled must give a code at every sign-in.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from django.conf import settings
from django.http import HttpRequest
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import ROLES, operator_roles

RECOVERY_CODES = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"

#: Roles that can export personal data: they must use two-factor sign-in by default.
PRIVILEGED_ROLES = frozenset(role for role, perms in ROLES.items() if "privacy" in perms)


def second_factor_required(user: Any) -> bool:
    """True if the operator's roles (or the setting) require them to enrol."""
    mode = settings.TIDINGS_REQUIRE_2FA
    if mode == "none":
        return False
    roles = operator_roles(user)
    if mode == "all":
        return bool(roles)
    return bool(roles & PRIVILEGED_ROLES)


def has_second_factor(user: Any) -> bool:
    return bool(user_has_device(user, confirmed=True))


#: Session key: whether the operator had a second factor when this session signed in.
ENROLLED_AT_SIGN_IN = "tidings_2fa_enrolled"


def remember_enrolment(request: HttpRequest, user: Any) -> None:
    """Called at every sign-in (user_logged_in), so later requests need no device query."""
    if hasattr(request, "session"):
        request.session[ENROLLED_AT_SIGN_IN] = has_second_factor(user)


def session_needs_second_factor(request: HttpRequest) -> str | None:
    """What this signed-in operator must do before going on: "verify", "enrol", or None.

    Costs no query for the common cases (a verified session, an operator without a second factor
    who needs none): whether they had one is noted in the session at sign-in.  An operator who
    enrolled after this session began keeps it until they sign in again, unless their role
    requires the second factor, in which case enrolment sends them on to the code page.
    """
    user = request.user
    verified = getattr(user, "is_verified", None)
    if verified is None or verified():
        return None
    if request.session.get(ENROLLED_AT_SIGN_IN):
        return "verify"
    if second_factor_required(user):
        return "enrol"
    return None


def unconfirmed_totp_device(user: Any) -> TOTPDevice:
    """The authenticator being enrolled: one unconfirmed device per user, kept across reloads."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def qr_code_svg(data: str) -> str:
    """An inline SVG QR code (no image request, no third party sees the secret)."""
    out = io.BytesIO()
    segno.make(data, error="m").save(
        out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True, title="QR code", nl=False
    )
    return out.getvalue().decode("utf-8")


def new_recovery_codes(user: Any) -> list[str]:
    """Replace the user's recovery codes with fresh ones and return them (shown once)."""
    device, _ = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_NAME, defaults={"confirmed": True}
    )
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def recovery_codes_left(user: Any) -> int:
    count: int = StaticToken.objects.filter(device__user=user, device__confirmed=True).count()
    return count


def match_code(user: Any, code: str) -> Any:
    """The device that accepts ``code`` (authenticator first, then recovery codes), or None."""
    code = "".join(code.split()).lower()
    if not code:
        return None
    if code.isdigit():
        for device in TOTPDevice.objects.filter(user=user, confirmed=True):
            if device.verify_token(code):
                return device
        return None
    for device in StaticDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(code):
            return device
    return None


def remove_devices(user: Any) -> None:
    """Delete every second-factor device of ``user`` (the authenticator and recovery codes)."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def is_verified(user: Any) -> bool:
    """Whether this session's second factor is done (django-otp's middleware adds the method)."""
    return bool(user.is_verified())
