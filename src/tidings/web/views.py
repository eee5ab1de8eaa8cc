from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tidings.audience.stats import audience_summary
from tidings.policy import get_policy

from .access import operator_required


@operator_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(
        request, "web/dashboard.html", {"policy": get_policy(), "audience": audience_summary()}
    )
