"""Changes to operator accounts: invitations, roles, deactivation, sessions, second factors.

Each action runs in one transaction, writes its audit entry (ids only: an operator's address is
personal data too), and sends mail only once the transaction has committed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.contrib.sessions.models import Session
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from tidings.lib import two_factor
from tidings.lib.access import ROLE_LABELS, ROLES, operator_roles
from tidings.lib.audit import audit


class OperatorError(Exception):
    """A change to operators that is refused; the message is shown to the operator."""


class InvitationTokens(PasswordResetTokenGenerator):
    """Invitation links: signed, expire after TIDINGS_INVITATION_DAYS, and stop working once the
    invitee has set a password (the token covers the password hash and last sign-in).

    Django's generator checks the age against PASSWORD_RESET_TIMEOUT (hours, for resets), so the
    check is redone here with the invitation's own lifetime.
    """

    key_salt = "tidings.web.invitation"

    def check_token(self, user, token):
        if not (user and token):
            return False
        try:
            ts = base36_to_int(token.split("-")[0])
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        age = self._num_seconds(self._now()) - ts
        return age <= settings.TIDINGS_INVITATION_DAYS * 86400


invitation_tokens = InvitationTokens()


def invitation_path(user: Any) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("operator-join", args=[uid, invitation_tokens.make_token(user)])


def _send_operator_email(template: str, to: str, context: dict[str, Any]) -> None:
    subject = render_to_string(f"web/email/{template}_subject.txt", context).strip()
    text = render_to_string(f"web/email/{template}.txt", context)
    send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, [to])


def active_owner_count() -> int:
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name="owner"))
        .distinct()
        .count()
    )


def _is_last_owner(user: Any) -> bool:
    return "owner" in operator_roles(user) and active_owner_count() <= 1


def _set_role(user: Any, role: str) -> None:
    if role not in ROLES:
        raise OperatorError(f"Unknown role {role!r}.")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    user._tidings_roles = None


@transaction.atomic
def do_invite_operator(email: str, role: str, *, by: Any) -> Any:
    """Create an operator account without a password and mail them a link to set one."""
    user_model = get_user_model()
    email = user_model.objects.normalize_email(email.strip())
    if user_model.objects.filter(Q(email__iexact=email) | Q(username__iexact=email)).exists():
        raise OperatorError("There is already an account with this address.")
    user = user_model.objects.create_user(email, email, None, is_staff=True)
    _set_role(user, role)
    audit("operator.invited", actor=by, obj=user, role=role)
    link = settings.TIDINGS_BASE_URL + invitation_path(user)
    context = {
        "link": link,
        "role": ROLE_LABELS[role],
        "days": settings.TIDINGS_INVITATION_DAYS,
        "inviter": by.get_username(),
    }
    transaction.on_commit(lambda: _send_operator_email("invitation", email, context))
    return user


@transaction.atomic
def do_accept_invitation(user: Any, password: str) -> None:
    user.set_password(password)
    user.save(update_fields=["password"])
    audit("operator.joined", actor=user, obj=user)


@transaction.atomic
def do_change_operator_role(user: Any, role: str, *, by: Any) -> None:
    if user.is_superuser:
        raise OperatorError("A superuser is always an owner; change superusers in the admin.")
    if role != "owner" and _is_last_owner(user):
        raise OperatorError("This is the last owner: make someone else an owner first.")
    before = sorted(operator_roles(user))
    _set_role(user, role)
    audit("operator.role_changed", actor=by, obj=user, before=before, after=role)


def _end_sessions(user: Any) -> int:
    """Delete every unexpired session of ``user``.

    Sessions are opaque rows, so this decodes each live one: fine for the few sessions an
    installation has (public pages keep no session); an operator-session index would be the next
    step if there ever were millions.
    """
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()
            ended += 1
    return ended


@transaction.atomic
def do_sign_out_everywhere(user: Any, *, by: Any) -> int:
    """End all of ``user``'s sessions (their browsers must sign in again); returns how many."""
    ended = _end_sessions(user)
    audit("operator.signed_out_everywhere", actor=by, obj=user, sessions=ended)
    return ended


@transaction.atomic
def do_deactivate_operator(user: Any, *, by: Any) -> None:
    if user.pk == by.pk:
        raise OperatorError("You cannot deactivate yourself.")
    if _is_last_owner(user):
        raise OperatorError("This is the last owner: make someone else an owner first.")
    user.is_active = False
    user.save(update_fields=["is_active"])
    ended = _end_sessions(user)
    audit("operator.deactivated", actor=by, obj=user, sessions=ended)


@transaction.atomic
def do_reactivate_operator(user: Any, *, by: Any) -> None:
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit("operator.reactivated", actor=by, obj=user)


@transaction.atomic
def do_enrol_second_factor(request: Any, device: Any) -> list[str]:
    """Confirm the authenticator being enrolled, verify this session with it, and return fresh
    recovery codes (to be shown once)."""
    from django_otp import login as otp_login

    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = two_factor.new_recovery_codes(request.user)
    otp_login(request, device)
    request.session.cycle_key()
    audit("operator.2fa_enrolled", actor=request.user, obj=request.user)
    return codes


@transaction.atomic
def do_regenerate_recovery_codes(user: Any) -> list[str]:
    codes = two_factor.new_recovery_codes(user)
    audit("operator.2fa_recovery_codes_replaced", actor=user, obj=user)
    return codes


@transaction.atomic
def do_reset_second_factor(user: Any, *, by: Any) -> None:
    """Remove an operator's authenticator and recovery codes (lost phone) and end their sessions:
    at the next sign-in they enrol again (if their role requires it)."""
    two_factor.remove_devices(user)
    ended = _end_sessions(user)
    audit("operator.2fa_reset", actor=by, obj=user, sessions=ended)


@transaction.atomic
def do_review_notice(*, actor: Any) -> None:
    """Record that ``actor`` read the privacy notice generated from the policy in force."""
    from tidings.policy import get_policy

    from .models import NoticeReview

    sha256 = get_policy().sha256
    NoticeReview.objects.create(policy_sha256=sha256, reviewed_by=actor, reviewed_at=timezone.now())
    audit("privacy_notice.reviewed", actor=actor, policy_sha256=sha256[:12])
