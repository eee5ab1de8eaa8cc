from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from . import get_policy


def privacy_notice(request: HttpRequest) -> HttpResponse:
    return render(request, "policy/notice.html", {"policy": get_policy()})


def privacy_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(get_policy().model_dump(mode="json"))
