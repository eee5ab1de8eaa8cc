"""The public tracking endpoints of journey mail: the campaigns' answers (the same GIF, the same
no-cache headers, a 404 page for a token that does not verify), journey tokens."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_http_methods

from tidings.campaigns.tracking import NO_CACHE, OPEN, PIXEL_GIF, is_machine_request

from .tracking import link_url, read_token, submit_event


def _machine(request: HttpRequest) -> bool:
    return is_machine_request(request.method or "GET", request.META.get("HTTP_USER_AGENT", ""))


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    parsed = read_token(token)
    if parsed is None or parsed[3] != OPEN:
        raise Http404("no such image")
    submit_event(parsed[0], parsed[1], parsed[2], OPEN, machine=_machine(request))
    return HttpResponse(PIXEL_GIF, content_type="image/gif", headers=NO_CACHE)


@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    parsed = read_token(token)
    if parsed is None or parsed[3] == OPEN:
        raise Http404("no such link")
    enrolment_id, seq, journey_id, index = parsed
    url = link_url(journey_id, index)
    if url is None:
        raise Http404("no such link")
    submit_event(enrolment_id, seq, journey_id, index, machine=_machine(request))
    response = HttpResponseRedirect(url)
    for name, value in NO_CACHE.items():
        response[name] = value
    return response
