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
