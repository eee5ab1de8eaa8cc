"""Campaigns → Senders: the From identities, each with its domain's health and what to fix."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from tidings.lib.access import operator_required

from ..forms import SenderForm
from ..models import Sender
from .senders import (
    check_sender_task,
    do_add_sender,
    do_check_sender,
    do_verify_sender,
    stored_health,
)


@operator_required(perm="settings")
def sender_index(request: HttpRequest) -> HttpResponse:
    form = SenderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            sender = do_add_sender(
                data["name"],
                data["email"],
                reply_to=data["reply_to"],
                dkim_selector=data["dkim_selector"],
                actor=request.user,
            )
            pk = sender.pk
            transaction.on_commit(lambda: check_sender_task.enqueue(pk))
        messages.success(
            request,
            "Sender added.  Its domain is being checked; it can send once SPF, DKIM, DMARC and "
            "reverse DNS pass (or an owner vouches for it).",
        )
        return redirect("campaigns:senders")
    senders = [(s, stored_health(s)) for s in Sender.objects.order_by("name", "email")]
    return render(
        request,
        "campaigns/sender_index.html",
        {"senders": senders, "form": form},
    )


@require_POST
@operator_required(perm="settings")
def sender_check(request: HttpRequest, sender_id: int) -> HttpResponse:
    """Check the sender's domain now (a few seconds; time-outs are bounded)."""
    sender = get_object_or_404(Sender, pk=sender_id)
    health = do_check_sender(sender, actor=request.user)
    sender.refresh_from_db()
    outcome = {
        "pass": "every required check passed",
        "fail": f"{len(health.failed)} required check(s) failed",
        "unknown": "some checks could not be made (DNS time-out); nothing changed",
    }[health.status]
    level = messages.success if health.status == "pass" else messages.warning
    level(
        request,
        f"{sender.domain}: {outcome}.  {sender} is "
        f"{'verified' if sender.verified else 'not verified'}.",
    )
    return redirect(reverse("campaigns:senders") + f"#sender-{sender.pk}")


@require_POST
@operator_required(perm="settings")
def sender_verify(request: HttpRequest, sender_id: int) -> HttpResponse:
    """Owners only (the settings permission): vouch for a sender whatever its checks say
    (audited as an override), or withdraw that."""
    sender = get_object_or_404(Sender, pk=sender_id)
    verified = request.POST.get("verified") == "1"
    do_verify_sender(sender, verified, actor=request.user)
    messages.success(request, f"{sender} is {'verified' if verified else 'no longer verified'}.")
    return redirect("campaigns:senders")
