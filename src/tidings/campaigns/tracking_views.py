"""The public tracking endpoints: the open pixel and the click redirect.

Both are public (the person's mail client calls them), need no cookie and write nothing to the
database in the request: the event goes to the ingest buffer (``tracking.submit_event``).  A
token that does not verify gets the ordinary 404 page.  The user agent is read only to tell a
machine from a person (``tracking.is_machine_request``) and is not kept.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_http_methods

from .tracking import (
    NO_CACHE,
    OPEN,
    PIXEL_GIF,
    is_machine_request,
    link_url,
    read_token,
    submit_event,
)

__all__ = ["NO_CACHE", "PIXEL_GIF", "click", "open_pixel"]


def _machine(request: HttpRequest) -> bool:
    return is_machine_request(request.method or "GET", request.META.get("HTTP_USER_AGENT", ""))


@require_http_methods(["GET", "HEAD"])
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    parsed = read_token(token)
    if parsed is None or parsed[2] != OPEN:
        raise Http404("no such image")
    submit_event(parsed[0], OPEN, machine=_machine(request))
    return HttpResponse(PIXEL_GIF, content_type="image/gif", headers=NO_CACHE)


@require_http_methods(["GET", "HEAD"])
def click(request: HttpRequest, token: str) -> HttpResponse:
    parsed = read_token(token)
    if parsed is None or parsed[2] == OPEN:
        raise Http404("no such link")
    delivery_id, campaign_id, index = parsed
    url = link_url(campaign_id, index)
    if url is None:
        raise Http404("no such link")
    submit_event(delivery_id, index, machine=_machine(request))
    response = HttpResponseRedirect(url)
    for name, value in NO_CACHE.items():
        response[name] = value
    return response
