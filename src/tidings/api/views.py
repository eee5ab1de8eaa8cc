"""Operator pages for API tokens and webhook endpoints (owners: the "settings" permission)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from tidings.lib.access import has_permission, operator_required

from . import actions
from .auth import EXPIRY_WARNING, rate_limit
from .forms import TokenForm, WebhookForm
from .models import EVENTS, ApiToken, WebhookEndpoint


@operator_required(perm="settings")
def token_index(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None, initial={"operator": request.user.pk})
    created = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        token, text = actions.do_create_api_token(
            name=data["name"],
            operator=data["operator"],
            scopes=data["scopes"],
            actor=request.user,
            expires_in_days=form.expires_in_days(),
        )
        created = {"token": token, "text": text}
        form = TokenForm(initial={"operator": request.user.pk})
    tokens = list(ApiToken.objects.select_related("operator"))
    soon = timezone.now() + EXPIRY_WARNING
    for token in tokens:
        token.expires_soon = (  # type: ignore[attr-defined]  # for the template only
            token.expires_at is not None and not token.expired and token.expires_at <= soon
        )
        token.role_limited = [  # type: ignore[attr-defined]  # for the template only
            scope
            for scope, perm in (("send", "send"), ("privacy", "privacy"), ("write", "people"))
            if scope in token.scopes and not has_permission(token.operator, perm)
        ]
    limit, window = rate_limit()
    return render(
        request,
        "api/token_index.html",
        {"form": form, "tokens": tokens, "created": created, "limit": limit, "window": window},
    )


@require_POST
@operator_required(perm="settings")
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id)
    if actions.do_revoke_api_token(token, actor=request.user):
        messages.success(request, f"Revoked the token “{token.name}”: it no longer works.")
    return redirect("api_settings:tokens")


@operator_required(perm="settings")
def webhook_index(request: HttpRequest) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = actions.do_create_webhook_endpoint(
                url=data["url"],
                events=data["events"],
                fields=data["fields"],
                description=data["description"],
                actor=request.user,
            )
        except actions.EndpointInvalid as exc:
            for problem in exc.problems:
                field, _, message = problem.partition(": ")
                if field in form.fields:  # type: ignore[operator]  # the dict, not the field
                    form.add_error(field, message)
                else:
                    form.add_error(None, problem)
        else:
            form = WebhookForm()
    return render(
        request,
        "api/webhook_index.html",
        {
            "form": form,
            "endpoints": WebhookEndpoint.objects.all(),
            "created": created,
            "events": EVENTS,
        },
    )


@operator_required(perm="settings")
def webhook_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    deliveries = endpoint.deliveries.order_by("-pk")[:100]
    return render(
        request,
        "api/webhook_detail.html",
        {"endpoint": endpoint, "deliveries": deliveries, "events": EVENTS},
    )


@require_POST
@operator_required(perm="settings")
def webhook_toggle(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    active = request.POST.get("active") == "1"
    actions.do_set_webhook_active(endpoint, active, actor=request.user)
    messages.success(request, "Endpoint enabled." if active else "Endpoint disabled.")
    return redirect("api_settings:webhook", endpoint_id=endpoint.pk)


@require_POST
@operator_required(perm="settings")
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    actions.do_delete_webhook_endpoint(endpoint, actor=request.user)
    messages.success(request, "Endpoint deleted.")
    return redirect("api_settings:webhooks")
