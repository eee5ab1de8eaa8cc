"""The operators page (owners): who can sign in, with which role; invitations and lockouts."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tidings.lib import two_factor
from tidings.lib.access import ROLE_LABELS, operator_required

from . import actions
from .forms import InviteForm, RoleForm


def _operator_or_404(pk: int):
    return get_object_or_404(get_user_model(), pk=pk, is_staff=True)


def _rows():
    users = get_user_model().objects.filter(is_staff=True).order_by("username")
    for user in users.prefetch_related("groups"):
        roles = {g.name for g in user.groups.all()} & set(ROLE_LABELS)
        role = "owner" if user.is_superuser else (sorted(roles)[0] if roles else "")
        yield {
            "user": user,
            "role": role,
            "role_label": ROLE_LABELS.get(role, "No role"),
            "two_factor": two_factor.has_second_factor(user),
            "two_factor_required": user.is_active and two_factor.second_factor_required(user),
            "invited": not user.has_usable_password() and user.last_login is None,
        }


@operator_required(perm="settings")
def operator_index(request: HttpRequest) -> HttpResponse:
    return _operator_page(request)


def _operator_page(request: HttpRequest, invite_form: InviteForm | None = None) -> HttpResponse:
    return render(
        request,
        "web/operators.html",
        {
            "rows": list(_rows()),
            "invite_form": invite_form or InviteForm(),
            "role_form": RoleForm(),
            "roles": ROLE_LABELS,
        },
        status=400 if invite_form is not None else 200,
    )


@require_POST
@operator_required(perm="settings")
def operator_invite(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            actions.do_invite_operator(
                form.cleaned_data["email"], form.cleaned_data["role"], by=request.user
            )
        except actions.OperatorError as exc:
            form.add_error("email", str(exc))
        else:
            messages.success(request, "Invitation sent.")
            return redirect("web:operators")
    return _operator_page(request, invite_form=form)


def _act_on(request: HttpRequest, action, user, done: str) -> HttpResponse:
    """Run ``action`` on ``user`` and say ``done`` (or why it was refused) on the operators page."""
    try:
        action(user, by=request.user)
    except actions.OperatorError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return redirect("web:operators")


@require_POST
@operator_required(perm="settings")
def operator_role(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _operator_or_404(user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
        return redirect("web:operators")
    role = form.cleaned_data["role"]
    return _act_on(
        request,
        partial(actions.do_change_operator_role, role=role),
        user,
        f"{user.get_username()} is now: {ROLE_LABELS[role]}.",
    )


@require_POST
@operator_required(perm="settings")
def operator_deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _operator_or_404(user_id)
    done = f"{user.get_username()} can no longer sign in."
    return _act_on(request, actions.do_deactivate_operator, user, done)


@require_POST
@operator_required(perm="settings")
def operator_reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _operator_or_404(user_id)
    done = f"{user.get_username()} can sign in again."
    return _act_on(request, actions.do_reactivate_operator, user, done)


@require_POST
@operator_required(perm="settings")
def operator_sign_out(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _operator_or_404(user_id)
    ended = actions.do_sign_out_everywhere(user, by=request.user)
    if user.pk == request.user.pk:
        return redirect("login")
    messages.success(request, f"{user.get_username()} was signed out of {ended} session(s).")
    return redirect("web:operators")


@require_POST
@operator_required(perm="settings")
def operator_reset_two_factor(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _operator_or_404(user_id)
    if user.pk == request.user.pk:
        messages.error(request, "Ask another owner to reset your own two-factor sign-in.")
        return redirect("web:operators")
    actions.do_reset_second_factor(user, by=request.user)
    messages.success(
        request,
        f"{user.get_username()}'s authenticator and recovery codes are removed; "
        "they enrol again at their next sign-in.",
    )
    return redirect("web:operators")
