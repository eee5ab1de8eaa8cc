"""Public pages of data-subject requests: ``/rights/`` (ask), the verification link, the download.

Nobody signs in: the verification link emailed to the address in the request is the proof that
the requester holds that mailbox, and nothing is released or changed before it is followed (a GET
shows a button; only its POST acts, because mail scanners open every link).  Every page answers
the same whether or not we hold anything under the address.  No JavaScript anywhere.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tidings.lib.ratelimit import setting_limit, too_many, within_limit
from tidings.policy import get_policy
from tidings.policy.screening_forms import no_store, screen_field, warm_up

from .actions import (
    KIND_LABELS,
    RightsError,
    do_create_rights_request,
    do_export_package,
    do_fulfil_rights_request,
    do_rectify_contact,
    do_verify_rights_request,
)
from .forms import RectifyForm, RightsRequestForm
from .models import RightsRequest
from .tokens import (
    SALT_DOWNLOAD,
    SALT_VERIFY,
    BadToken,
    ExpiredToken,
    download_url,
    link_days,
    read_token,
)

REQUEST_LIMIT = (5, 600)  # requests per IP address, per seconds (TIDINGS_RIGHTS_LIMIT)

State = RightsRequest.State


def _link_problem(request: HttpRequest, *, expired: bool) -> HttpResponse:
    return render(
        request,
        "rights/public/link_problem.html",
        {"expired": expired, "link_days": link_days()},
        status=410 if expired else 404,
    )


@require_http_methods(["GET", "HEAD", "POST"])
def request_form(request: HttpRequest) -> HttpResponse:
    form = RightsRequestForm(request.POST or None)
    if request.method != "POST":
        warm_up()  # screening's engine loads while the person types
    if request.method == "POST":
        limit = setting_limit("TIDINGS_RIGHTS_LIMIT", REQUEST_LIMIT)
        if not within_limit(request, "rights", limit):
            return too_many(request, limit)
        if form.honeypot_filled():
            return HttpResponseRedirect(reverse("rights:sent"), status=303)
        # Details are kept only with a correction; special-category data in them is taken out
        # and the person told so, with the rest of what they wrote given back to send again.
        if form.is_valid() and not (
            form.cleaned_data["kind"] == RightsRequest.Kind.RECTIFY
            and screen_field(form, "details")
        ):
            try:
                do_create_rights_request(
                    form.cleaned_data["kind"],
                    form.cleaned_data["email"],
                    details=form.cleaned_data["details"],
                )
            except RightsError as exc:  # special-category data, under on_detect = "reject"
                form.add_error("details", str(exc))
            else:
                return HttpResponseRedirect(reverse("rights:sent"), status=303)
    policy = get_policy()
    return no_store(
        render(
            request,
            "rights/public/request.html",
            {
                "form": form,
                "policy": policy,
                "response_days": policy.rights.response_days,
                "link_days": link_days(),
            },
        )
    )


def sent(request: HttpRequest) -> HttpResponse:
    return render(request, "rights/public/sent.html", {"link_days": link_days()})


def _request_for(token: str, salt: str) -> RightsRequest:
    request_id = read_token(token, salt)
    found = RightsRequest.objects.filter(pk=request_id).first()
    if found is None:
        raise BadToken("the link is not valid")
    return found


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def verify(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the verification email.  GET: what will happen, and a button.  POST: verify
    and carry it out (a correction then shows the form of the details that may be corrected)."""
    try:
        rights_request = _request_for(token, SALT_VERIFY)
    except ExpiredToken:
        return _link_problem(request, expired=True)
    except BadToken:
        return _link_problem(request, expired=False)
    state = rights_request.state
    kind = rights_request.kind
    rectify_form = None
    if request.method == "POST":
        if state == State.RECEIVED:
            rights_request = do_verify_rights_request(rights_request)
            if kind != RightsRequest.Kind.RECTIFY or rights_request.contact_id is None:
                do_fulfil_rights_request(rights_request)
            return HttpResponseRedirect(request.path, status=303)
        if state == State.VERIFIED and kind == RightsRequest.Kind.RECTIFY:
            rectify_form = RectifyForm(request.POST)
            if rectify_form.is_valid() and rights_request.contact is not None:
                try:
                    do_rectify_contact(
                        rights_request.contact,
                        rectify_form.cleaned_data,
                        request=rights_request,
                    )
                except RightsError as exc:
                    rectify_form.add_error(None, str(exc))
                else:
                    return HttpResponseRedirect(request.path, status=303)
    if (
        state in (State.VERIFIED, State.IN_PROGRESS)
        and kind == RightsRequest.Kind.RECTIFY
        and rights_request.contact is not None
        and rectify_form is None
    ):
        contact = rights_request.contact
        rectify_form = RectifyForm(initial={n: getattr(contact, n) for n in RectifyForm().fields})
    context = {
        "rights_request": rights_request,
        "kind_label": KIND_LABELS[kind],
        "action": request.path,
        "rectify_form": rectify_form,
        "download_url": (
            download_url(rights_request.pk)
            if kind == RightsRequest.Kind.ACCESS and rights_request.state == State.COMPLETED
            else ""
        ),
        "outcome": rights_request.outcome or {},
    }
    return render(request, "rights/public/verify.html", context)


@never_cache
@require_http_methods(["GET", "HEAD"])
def download(request: HttpRequest, token: str) -> HttpResponse:
    """The access package, built now from what we hold, for a completed access request."""
    try:
        rights_request = _request_for(token, SALT_DOWNLOAD)
    except ExpiredToken:
        return _link_problem(request, expired=True)
    except BadToken:
        return _link_problem(request, expired=False)
    try:
        data = do_export_package(
            rights_request, actor=None, actor_label="download link", completed_only=True
        )
    except RightsError:
        return _link_problem(request, expired=False)
    return package_response(rights_request, data)


def package_response(rights_request: RightsRequest, data: bytes) -> HttpResponse:
    """The ZIP ``do_export_package`` built, as a download (the person's link and the queue)."""
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="personal-data-request-{rights_request.pk}.zip"'
    )
    response["Cache-Control"] = "no-store"
    return response
