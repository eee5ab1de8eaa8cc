"""The public privacy notice: ``/privacy`` for people, ``/privacy.json`` for machines."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import get_conditional_response, patch_cache_control, set_response_etag
from django.views.decorators.http import require_safe

from . import get_policy
from .notice import build_notice, notice_data, recorded_sources

# Both documents change only when the policy file (or tidings) changes; five minutes of caching
# keeps a redeployed policy visible quickly.
MAX_AGE = 300


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    return user is not None and user.is_authenticated


def _cacheable(request: HttpRequest, response: HttpResponse, *, public: bool) -> HttpResponse:
    """Caching (public, or private to this browser), plus an ETag for 304 Not Modified.

    The ETag is a hash of the body rather than of ``policy.sha256`` alone: the page also depends
    on the layout and on which apps are installed (the rights request link), and a tag that
    outlived a change to either would keep serving a stale notice.
    """
    if public:
        patch_cache_control(response, public=True, max_age=MAX_AGE)
    else:
        patch_cache_control(response, private=True, max_age=0)
    set_response_etag(response)
    return get_conditional_response(request, etag=response["ETag"], response=response) or response


@require_safe
def privacy_notice(request: HttpRequest) -> HttpResponse:
    notice = build_notice(get_policy(), recorded_sources())
    response = render(request, "policy/notice.html", {"notice": notice, "policy": notice.policy})
    # The layout greets a signed-in operator by name and carries a CSRF token: that page is for
    # one browser only.  Everyone else gets the same page, which shared caches may keep.
    return _cacheable(request, response, public=not _signed_in(request))


@require_safe
def privacy_json(request: HttpRequest) -> HttpResponse:
    response = JsonResponse(
        notice_data(get_policy(), recorded_sources()), json_dumps_params={"indent": 2}
    )
    # A public document: any site may fetch it (no cookies or credentials are involved).
    response["Access-Control-Allow-Origin"] = "*"
    return _cacheable(request, response, public=True)
