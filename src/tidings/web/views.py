from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tidings.audience.stats import audience_summary
from tidings.lib.access import has_permission, operator_required
from tidings.policy import get_policy


@operator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    from .checklist import progress

    audience = audience_summary()  # counted live, or a snapshot at a large audience
    context = {
        "policy": get_policy(),
        "audience": audience,
        "checklist": progress(request.user),
        "waiting": _waiting_for_second_operator(request.user),
    }
    # Open to every operator; the campaign figures only for those who may see reports.
    if has_permission(request.user, "reports"):
        from tidings.campaigns.deliverability.checklist import dashboard_checklist
        from tidings.campaigns.reports import dashboard_summary

        context["reports"] = dashboard_summary(growth=audience["growth"])
        context["bulk_checklist"] = dashboard_checklist()  # a snapshot: slow to count at scale
    return render(request, "web/dashboard.html", context)


def _waiting_for_second_operator(user: Any) -> dict[str, Any] | None:
    """With four-eyes sending: the campaigns and journeys this operator may confirm that wait
    for a second operator (None when there are none, or four-eyes is off)."""
    from tidings.campaigns.second_operator import waiting as waiting_campaigns
    from tidings.journeys.four_eyes import waiting as waiting_journeys

    campaigns, journeys = waiting_campaigns(user), waiting_journeys(user)
    if not campaigns and not journeys:
        return None
    return {"campaigns": campaigns, "journeys": journeys, "count": len(campaigns) + len(journeys)}


@require_POST
@operator_required(perm="settings")
def notice_reviewed(request: HttpRequest) -> HttpResponse:
    from .actions import do_review_notice

    do_review_notice(actor=request.user)
    messages.success(request, "Marked the privacy notice as reviewed.")
    return redirect("web:dashboard")


@operator_required(perm="settings")
def branding(request: HttpRequest) -> HttpResponse:
    """The look of the public pages: logo, colours and font, refused below WCAG AA contrast."""
    from tidings.media.actions import do_upload_image
    from tidings.media.images import ImageRefused

    from .branding import current, do_save_branding, logo_of, palette
    from .branding_forms import BrandingForm

    saved = current()
    initial: dict[str, Any] = {
        "background": "#ffffff",
        "text": "#1b1f24",
        "accent": "#1f5fb8",
        "font": "system",
    }
    if saved is not None:
        initial = {
            "logo": getattr(logo_of(saved), "pk", None),
            "background": saved.background,
            "text": saved.text,
            "accent": saved.accent,
            "font": saved.font,
        }
    form = BrandingForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid() and request.POST.get("op") != "preview":
        data = form.cleaned_data
        logo = data["logo"]
        try:
            if data.get("logo_upload"):
                logo, _ = do_upload_image(
                    data["logo_upload"].read(), name="Logo", alt="", actor=request.user
                )
        except ImageRefused as exc:
            form.add_error("logo_upload", f"This picture cannot be used: {exc}.")
        else:
            do_save_branding(
                {
                    "logo": logo,
                    "background": data["background"],
                    "text": data["text"],
                    "accent": data["accent"],
                    "font": data["font"],
                },
                actor=request.user,
            )
            messages.success(request, "Saved: the public pages now use this look.")
            return redirect("web:branding")
    values = {k: form[k].value() or initial[k] for k in ("background", "text", "accent", "font")}
    try:
        sample = palette(values["background"], values["text"], values["accent"], values["font"])
    except ValueError:
        sample = None
    return render(request, "web/branding.html", {"form": form, "sample": sample})


@operator_required
def search(request: HttpRequest) -> HttpResponse:
    """The search box's results: only what the operator's role may see."""
    from .search import MIN_LENGTH, search

    query = request.GET.get("q", "").strip()
    sections = search(request.user, query)
    return render(
        request,
        "web/search.html",
        {
            "query": query,
            "search_query": query,
            "sections": sections,
            "too_short": 0 < len(query) < MIN_LENGTH,
        },
    )


def favicon(request: HttpRequest) -> HttpResponseBase:
    """/favicon.ico, which browsers ask for on every site whatever the page says."""
    from pathlib import Path

    from django.contrib.staticfiles import finders
    from django.http import FileResponse

    found = finders.find("tidings/favicon.ico")
    assert isinstance(found, str)  # shipped with tidings
    path = Path(found)
    response = FileResponse(path.open("rb"), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=604800"
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 400 page; a request body over the size limit gets 413 and says what the limit is.
    Under /api/ the same answer is a problem document (``application/problem+json``)."""
    from django.conf import settings
    from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent

    if isinstance(exception, RequestDataTooBig):
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024**2
        message = (
            f"What you sent is too large: this site accepts at most {limit_mb:g} MB in one form. "
            "Send less at once (for contact imports, use the import page or the command line)."
        )
        status = 413
    elif isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        message = "The form has too many fields or files for this site to accept."
        status = 413
    else:
        message = "The request could not be understood."
        status = 400
    if request.path.startswith("/api/"):
        # The API's clients read problem documents, not pages (tidings.api.errors).
        from tidings.api.errors import problem_response

        return problem_response(status, message)
    return render(request, "400.html", {"message": message}, status=status)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page (Django's, from 500.html); under /api/ a problem document instead."""
    if request.path.startswith("/api/"):
        from tidings.api.errors import problem_response

        return problem_response(500, "Something went wrong on the server; it has been logged.")
    from django.views.defaults import server_error as page

    return page(request)
