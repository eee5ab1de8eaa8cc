"""Sign-in events in the audit log: failed and locked out (signed in: the sign-in page's view).

Entries name the operator by id when the username belongs to one, never by what was typed: a
mistyped username can be anything, including somebody's address.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from tidings.lib.audit import audit


def _known_user(username: Any):
    if not isinstance(username, str) or not username:
        return None
    return get_user_model().objects.filter(username=username).first()


@receiver(user_logged_in, dispatch_uid="tidings.web.remember_enrolment")
def _signed_in(sender, request, user, **kwargs) -> None:
    from tidings.lib.two_factor import remember_enrolment

    if request is not None:
        remember_enrolment(request, user)


@receiver(user_login_failed, dispatch_uid="tidings.web.audit_sign_in_failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    user = _known_user(credentials.get("username"))
    if request is not None and getattr(request, "axes_locked_out", False):
        return  # recorded once, as operator.locked_out
    audit("operator.sign_in_failed", actor_label="visitor", obj=user, known_user=user is not None)


def _locked_out(sender, request, username, ip_address, **kwargs) -> None:
    user = _known_user(username)
    audit("operator.locked_out", actor_label="visitor", obj=user, known_user=user is not None)


def connect_axes() -> None:
    from axes.signals import user_locked_out

    user_locked_out.connect(_locked_out, dispatch_uid="tidings.web.audit_locked_out")
