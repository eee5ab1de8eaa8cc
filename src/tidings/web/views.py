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
        from tidings.campaigns.reports import dashboard_summary

        context["reports"] = dashboard_summary()
    return render(request, "web/dashboard.html", context)
