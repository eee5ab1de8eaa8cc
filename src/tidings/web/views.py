from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tidings.audience.stats import audience_summary
from tidings.policy import get_policy

from .access import has_permission, operator_required


@operator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {"policy": get_policy(), "audience": audience_summary()}
    # Open to every operator; the campaign figures only for those who may see reports.
    if has_permission(request.user, "reports"):
        from tidings.campaigns.deliverability.checklist import bulk_sender_checklist
        from tidings.campaigns.reports import dashboard_summary

        context["reports"] = dashboard_summary()
        context["bulk_checklist"] = bulk_sender_checklist()
    return render(request, "web/dashboard.html", context)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 400 page; a request body over the size limit gets 413 and says what the limit is."""
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
    return render(request, "400.html", {"message": message}, status=status)
