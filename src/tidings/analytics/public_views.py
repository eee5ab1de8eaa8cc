"""Public endpoints of the website's statistics and cookie banner.  Public on purpose: no
decorator.  None of them reads or writes the session, so none sets a cookie; none is CSRF-checked
(they change nothing that belongs to anyone, and the browser posts them from other sites)."""

from __future__ import annotations

import base64
import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.cache import get_conditional_response, patch_cache_control, set_response_etag
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from tidings.lib.ratelimit import hit, setting_limit, visitor
from tidings.policy import get_policy

from . import ingest
from .consent import (
    InvalidConsent,
    banner_config,
    clean_choice,
    do_record_consent,
    remember_banner,
    require_shown_banner,
)

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
MAX_BODY = 4096  # a page address and a referrer; anything longer is not our script
BANNER_MAX_AGE = 300  # the banner's texts change only with the policy
# Banner answers kept per visitor network (an IPv4 address, an IPv6 /64), per seconds
# (TIDINGS_CONSENT_LIMIT).  One person answers once per site, again only when the banner changes
# or they change their mind, so 60 a minute is an office, a campus or a mobile carrier's shared
# address with thousands of people behind it all answering within the same hour (3,600 an hour),
# while a script posting in a loop keeps at most one row a second per address instead of
# filling the table.  The banner does not wait for the answer: past the limit the visitor's
# choice still holds (it is in their cookie); only that answer's anonymous record is not kept.
CONSENT_LIMIT = (60, 60)


_TITLES = {400: "Bad request", 429: "Too many requests"}


def _problem(status: int, detail: str) -> JsonResponse:
    response = JsonResponse(
        {
            "type": "about:blank",
            "title": _TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
        },
        status=status,
        content_type="application/problem+json",
    )
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _json_body(request: HttpRequest):
    if len(request.body) > MAX_BODY:
        raise ValueError("the request is too large")
    try:
        return json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("expected a JSON body") from None


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "max-age=0, no-store"
    response["Access-Control-Allow-Origin"] = "*"
    return response


def _options() -> HttpResponse:
    """``OPTIONS`` on the endpoints the scripts post to: 204 and what they take (was 405).

    The scripts never send a CORS preflight: ``sendBeacon`` with a string body and the fallback
    ``fetch(..., {mode: "no-cors"})`` send ``text/plain``, a "simple" request browsers post from
    any site without asking first (tests/analytics/test_script.py holds them to it).  So a
    preflight (``Access-Control-Request-Method``, from someone else's code that wants to send
    JSON or other headers) is answered without granting anything: no
    ``Access-Control-Allow-Methods``/``-Headers``, and the browser does not send the request."""
    response = HttpResponse(status=204)
    response["Allow"] = "OPTIONS, POST"
    response["Cache-Control"] = "max-age=0, no-store"
    return response


def parse_collect(body: bytes) -> tuple[str, str, str]:
    """(page address, referrer, consent value) from the script's body, or ValueError."""
    if len(body) > MAX_BODY:
        raise ValueError("the request is too large")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("expected a JSON body") from None
    if not isinstance(data, dict) or not isinstance(data.get("u"), str):
        raise ValueError('expected {"u": "<page address>", "r": "<referrer>"}')
    referrer, consent_value = data.get("r"), data.get("c")
    return (
        data["u"],
        referrer if isinstance(referrer, str) else "",
        consent_value if isinstance(consent_value, str) else "",
    )


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def collect(request: HttpRequest) -> HttpResponse:
    """One page view from the script: {"u": page address, "r": referrer, "c": consent cookie}.

    Answers 204 whether or not the view was counted: the page learns nothing from it.  Most of
    these requests are answered by ``fastpath`` instead, with the same parsing and decision."""
    if request.method == "OPTIONS":
        return _options()
    try:
        url, referrer, consent_value = parse_collect(request.body)
    except ValueError as exc:
        return _problem(400, str(exc))
    ingest.count_page_view(request, url=url, referrer=referrer, consent_value=consent_value)
    return _no_store(HttpResponse(status=204))


@require_safe
def pixel(request: HttpRequest) -> HttpResponse:
    """The no-JavaScript fallback: a 1x1 GIF whose request's Referer is the page viewed (the
    snippet's ``referrerpolicy`` lets the browser send it), or ``?u=`` when the site fills it."""
    url = request.GET.get("u") or request.headers.get("Referer", "")
    if request.method == "GET" and url:
        ingest.count_page_view(request, url=url[:2000], referrer="", consent_value="")
    return _no_store(HttpResponse(GIF, content_type="image/gif"))


@require_safe
def banner_json(request: HttpRequest) -> HttpResponse:
    """The banner's texts and purposes, from the policy: the same for everyone, so cacheable."""
    config = banner_config(get_policy(), settings.TIDINGS_BASE_URL)
    remember_banner(config["version"], config["texts"], timezone.now())
    response = JsonResponse(config)
    response["Access-Control-Allow-Origin"] = "*"
    patch_cache_control(response, public=True, max_age=BANNER_MAX_AGE)
    set_response_etag(response)
    return get_conditional_response(request, etag=response["ETag"], response=response) or response


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def consent(request: HttpRequest) -> HttpResponse:
    """Keep the anonymous proof of a banner answer: {"version": ..., "choice": {...}}.

    Rate-limited per visitor network (``CONSENT_LIMIT``): 429 problem+json with Retry-After."""
    if request.method == "OPTIONS":
        return _options()
    limit = setting_limit("TIDINGS_CONSENT_LIMIT", CONSENT_LIMIT)
    verdict = hit("consent", visitor(request), limit)
    if not verdict.allowed:
        response = _problem(
            429, f"Too many answers from this network; try again in {verdict.retry_after} seconds."
        )
        response["Retry-After"] = str(verdict.retry_after)
        return response
    try:
        version, choice, how = clean_choice(get_policy(), _json_body(request))
        require_shown_banner(get_policy(), version, timezone.now())
    except (ValueError, InvalidConsent) as exc:
        return _problem(400, str(exc))
    do_record_consent(version, choice, how, timezone.now())
    return _no_store(HttpResponse(status=204))
