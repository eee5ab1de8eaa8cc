"""An operator's own account: second-factor sign-in and enrolment, password, joining by invitation.

Signing in is Django's LoginView (password, counted by django-axes); then ``operator_required``
sends an operator who has (or must have) a second factor to ``two_factor_verify`` or
``two_factor_enrol`` before any other page.  These views are the ones that pass
``second_factor=False``.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_str
from django.utils.http import url_has_allowed_host_and_scheme, urlsafe_base64_decode
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from tidings.lib import two_factor
from tidings.lib.access import OperatorRequest, operator_required
from tidings.lib.audit import audit
from tidings.lib.ratelimit import count_attempt, setting_limit, too_many, within_limit

from . import actions
from .forms import CodeForm, EnrolForm


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("web:dashboard")


@operator_required(second_factor=False)
def two_factor_verify(request: OperatorRequest) -> HttpResponse:
    """The second step of signing in: a code from the authenticator app or a recovery code."""
    user = request.user
    if two_factor.is_verified(user):
        return HttpResponseRedirect(_next_url(request))
    if not two_factor.has_second_factor(user):
        return redirect(f"{reverse('two-factor')}?{urlencode({'next': _next_url(request)})}")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = two_factor.match_code(user, form.cleaned_data["code"])
        if device is not None:
            otp_login(request, device)
            request.session.cycle_key()  # a new session id for the fully signed-in session
            recovery = device.__class__.__name__ == "StaticDevice"
            audit("operator.2fa_verified", actor=user, obj=user, recovery_code=recovery)
            if recovery:
                left = two_factor.recovery_codes_left(user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. "
                    "Make new ones on your account page if you are running short.",
                )
            return HttpResponseRedirect(_next_url(request))
        audit("operator.2fa_failed", actor=user, obj=user)
        form.add_error(
            "code",
            "That code is not right (or was used already). Codes change every 30 seconds; "
            "after several wrong codes you must wait a little before trying again.",
        )
    return render(request, "web/two_factor_verify.html", {"form": form, "next": _next_url(request)})


@operator_required(second_factor=False)
def two_factor_enrol(request: OperatorRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code (or type the key), confirm with a code."""
    user = request.user
    if two_factor.has_second_factor(user):
        if not two_factor.is_verified(user):
            query = urlencode({"next": reverse("account")})
            return redirect(f"{reverse('two-factor-verify')}?{query}")
        return redirect("account")
    device = two_factor.unconfirmed_totp_device(user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = "".join(form.cleaned_data["code"].split())
        if code.isdigit() and device.verify_token(code):
            codes = actions.do_enrol_second_factor(request, device)
            return render(
                request,
                "web/two_factor_codes.html",
                {"codes": codes, "next": _next_url(request), "enrolled": True},
            )
        form.add_error(
            "code", "That code does not match. Check the app shows tidings, and try the new code."
        )
    secret = device.config_url.split("secret=", 1)[1].split("&", 1)[0]
    return render(
        request,
        "web/two_factor_enrol.html",
        {
            "form": form,
            "qr_svg": two_factor.qr_code_svg(device.config_url),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "required": two_factor.second_factor_required(user),
            "next": _next_url(request),
        },
    )


@operator_required
def account(request: HttpRequest) -> HttpResponse:
    user = request.user
    return render(
        request,
        "web/account.html",
        {
            "enrolled": two_factor.has_second_factor(user),
            "required": two_factor.second_factor_required(user),
            "codes_left": two_factor.recovery_codes_left(user),
        },
    )


@require_POST
@operator_required
def recovery_codes(request: HttpRequest) -> HttpResponse:
    if not two_factor.has_second_factor(request.user):
        return redirect("two-factor")
    codes = actions.do_regenerate_recovery_codes(request.user)
    return render(
        request,
        "web/two_factor_codes.html",
        {"codes": codes, "next": reverse("account"), "enrolled": False},
    )


@require_POST
@operator_required
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    ended = actions.do_sign_out_everywhere(request.user, by=request.user)
    logout(request)  # this browser's session was among them
    messages.success(request, f"Signed out of {ended} session(s). Sign in again to continue.")
    return redirect("login")


class LoginView(auth_views.LoginView):
    """Django's sign-in (the password step), audited.  Failures and lockouts are audited from
    signals (web/signals.py), since django-axes answers a locked-out sign-in before this view."""

    template_name = "web/login.html"

    def form_valid(self, form):
        response = super().form_valid(form)
        audit("operator.signed_in", actor=form.get_user(), obj=form.get_user())
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "web/password_change.html"
    success_url = reverse_lazy("account")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit("operator.password_changed", actor=self.request.user, obj=self.request.user)
        messages.success(self.request, "Your password is changed.")
        return response


password_change = operator_required(PasswordChangeView.as_view())


#: "Forgot your password?" requests per IP address, per seconds (TIDINGS_PASSWORD_RESET_LIMIT).
RESET_LIMIT = (5, 600)
#: Reset mails to one address, per seconds (TIDINGS_PASSWORD_RESETS_PER_ADDRESS).
RESETS_PER_ADDRESS = (3, 3600)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset request, limited: anyone on the internet may ask, so without a limit the
    page would send an operator (or our sending reputation) as many mails as a script asks for.
    Past the per-address limit the page answers as usual and sends nothing, so it still does
    not tell whether the address belongs to an operator."""

    template_name = "web/password_reset.html"
    email_template_name = "web/email/password_reset.txt"
    subject_template_name = "web/email/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def post(self, request, *args, **kwargs):
        limit = setting_limit("TIDINGS_PASSWORD_RESET_LIMIT", RESET_LIMIT)
        if not within_limit(request, "password-reset", limit):
            return too_many(request, limit)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        address = form.cleaned_data["email"].strip().lower()
        key = hashlib.sha256(address.encode()).hexdigest()[:32]  # the cache keeps no address
        if not count_attempt(
            "password-reset-address",
            key,
            "TIDINGS_PASSWORD_RESETS_PER_ADDRESS",
            RESETS_PER_ADDRESS,
        ):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "web/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        audit("operator.password_reset", actor_label="operator", obj=form.user)
        return response


def join(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Public: the page an invitation links to; the invitee chooses a password."""
    user_model = get_user_model()
    try:
        user = user_model.objects.get(pk=force_str(urlsafe_base64_decode(uidb64)))
    except (ValueError, TypeError, OverflowError, user_model.DoesNotExist):
        user = None
    if user is None or not user.is_active or not actions.invitation_tokens.check_token(user, token):
        return render(request, "web/join_invalid.html", status=404)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        actions.do_accept_invitation(user, form.cleaned_data["new_password1"])
        messages.success(request, "Your password is set. Sign in to start.")
        return redirect("login")
    return render(request, "web/join.html", {"form": form, "invitee": user})
