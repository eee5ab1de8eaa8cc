"""Operators with a given role, for tests of who may do what."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

OPERATOR_PASSWORD = "correct horse battery staple"


def make_operator(username: str, role: str, *, password: str | None = OPERATOR_PASSWORD):
    """A staff user holding ``role`` (owner, editor, analyst, privacy_officer)."""
    user = get_user_model().objects.create_user(
        username, f"{username}@example.co.uk", password, is_staff=True
    )
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def sign_in(client, user, *, second_factor: bool = True):
    """Sign ``user`` in on ``client`` as the sign-in page would, second factor included.

    ``force_login`` alone is a password-only session: an operator who must use two-factor sign-in
    gets sent to enrolment.  With ``second_factor`` the user gets a confirmed authenticator and the
    session is marked as verified with it (django-otp's session key).  Returns the device.
    """
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    if not second_factor:
        return None
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device
