"""The public demo pages: ``/demo/`` to book, and the signed links in the emails to move or cancel.

Times are shown in the visitor's timezone: chosen from a list (a GET form), defaulting to the
company's; a tiny script (``booking/timezone.js``) picks the browser's zone when there is no
choice in the address yet, so the page works without JavaScript and is better with it.  The
booking form is the contact form's (the enquiry purpose's fields, honeypot, per-IP limit).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from tidings.audience.actions import FieldNotAllowed
from tidings.audience.emails import InvalidEmail
from tidings.audience.tokens import BadToken
from tidings.crm.queries import enquiry_notice, require_web_form
from tidings.lib.client_ip import client_ip
from tidings.lib.ratelimit import setting_limit, too_many, within_limit
from tidings.policy.screening_forms import warm_up

from .actions import (
    AlreadyBooked,
    Newsletter,
    NotChangeable,
    SlotTaken,
    TimeNotOffered,
    do_book_demo,
    do_cancel_booking,
    do_reschedule_booking,
    free_slots,
    held_by,
    is_not_offered,
    meeting_time,
)
from .forms import BookingForm, RescheduleForm, timezone_names, zone_or
from .models import Availability, Booking
from .slots import by_day, parse_key
from .tokens import make_manage_token, read_manage_token

BOOKING_LIMIT = (5, 600)  # submissions per IP address, per seconds (TIDINGS_BOOKING_LIMIT)

# The browser that booked a demo keeps its id (signed; no name, no address) until the demo is
# over, so that submitting the same form again (a double click, "back" then "send") is answered
# plainly with "you already hold this time" — and only there: another browser typing the same
# address and time gets the answer anyone gets, which tells nothing about who booked.
HELD_COOKIE = "tidings_demo"
HELD_SALT = "tidings.booking.held"


def _booked(request: HttpRequest, booking: Booking | None = None) -> HttpResponse:
    response = HttpResponseRedirect(reverse("booking_public:booked"), status=303)
    if booking is not None:
        response.set_signed_cookie(
            HELD_COOKIE,
            str(booking.pk),
            salt=HELD_SALT,
            max_age=max(60, int((booking.end - timezone.now()).total_seconds())),
            path=reverse("booking_public:book"),
            secure=request.is_secure(),
            httponly=True,
            samesite="Lax",
        )
    return response


def _held_here(request: HttpRequest) -> bool:
    """This browser booked the demo the posted address holds at the posted time."""
    try:
        booking_id = int(request.get_signed_cookie(HELD_COOKIE, salt=HELD_SALT) or "")
    except (KeyError, ValueError, signing.BadSignature):
        return False
    start = parse_key(request.POST.get("slot", ""))
    held = held_by(request.POST.get("email", ""), start) if start is not None else None
    return held is not None and held.pk == booking_id


def _gone_message(posted_slot: str) -> str:
    """Why a time the form no longer offers cannot be booked: taken by someone, or no longer
    (or never) a time we offer at all (passed, too soon, too far ahead)."""
    if is_not_offered(parse_key(posted_slot)):
        return str(TimeNotOffered())
    return str(SlotTaken())


def _zone(request: HttpRequest, availability: Availability) -> str:
    return zone_or(request.POST.get("tz") or request.GET.get("tz"), availability.timezone)


def _wall(moment, zone: ZoneInfo):
    """The wall-clock time in ``zone``, naive: templates would convert an aware one to the
    installation's timezone."""
    return moment.astimezone(zone).replace(tzinfo=None)


DAYS_PER_PAGE = 5  # days with free times shown at once; "Later times" shows the next ones


def _picker(slots, zone_name: str, request: HttpRequest, chosen: str = "") -> dict:
    """The slots to show, grouped by day in the visitor's zone, a few days a page (the page of
    the chosen slot after a refused submission)."""
    zone = ZoneInfo(zone_name)
    days = by_day(slots, zone)
    pages = max(1, -(-len(days) // DAYS_PER_PAGE))
    try:
        page = int(request.GET.get("page", 0))
    except ValueError:
        page = 0
    chosen_start = parse_key(chosen)
    if chosen_start is not None:  # its day, or the next with times if it is gone
        chosen_day = chosen_start.astimezone(zone).date()
        later = [i for i, (day, _) in enumerate(days) if day >= chosen_day]
        page = later[0] // DAYS_PER_PAGE if later else pages - 1
    page = min(max(page, 0), pages - 1)
    shown = days[page * DAYS_PER_PAGE : (page + 1) * DAYS_PER_PAGE]
    return {
        "days": [
            (day, [(s.key, _wall(s.start, zone), _wall(s.end, zone)) for s in day_slots])
            for day, day_slots in shown
        ],
        "tz": zone_name,
        "timezones": timezone_names(),
        "previous_page": page - 1 if page > 0 else None,
        "next_page": page + 1 if page + 1 < pages else None,
    }


@require_http_methods(["GET", "HEAD", "POST"])
def book(request: HttpRequest) -> HttpResponse:
    # Like the contact form: only while the policy lists the web form as a source.
    require_web_form()
    availability = Availability.current()
    newsletter_form = availability.newsletter_form
    if newsletter_form is not None and not newsletter_form.is_active:
        newsletter_form = None
    zone_name = _zone(request, availability)
    slots = free_slots()
    status = 200
    if request.method == "POST":
        limit = setting_limit("TIDINGS_BOOKING_LIMIT", BOOKING_LIMIT)
        if not within_limit(request, "booking", limit):
            return too_many(request, limit)
        form = BookingForm(
            request.POST, slots=slots, newsletter_form=newsletter_form, default_zone=zone_name
        )
        if form.honeypot_filled():
            return _booked(request)
        if _held_here(request):  # the same form sent again: nothing more to do
            return HttpResponseRedirect(reverse("booking_public:booked") + "?again=1", status=303)
        if form.is_valid():
            newsletter = None
            if form.wants_newsletter() and newsletter_form is not None:
                newsletter = Newsletter(newsletter_form, form.wording, client_ip(request))
            try:
                booking = do_book_demo(
                    form.person_values(),
                    start=form.cleaned_data["slot"],
                    visitor_timezone=form.cleaned_data["tz"],
                    newsletter=newsletter,
                )
            except AlreadyBooked:
                # The address already holds this time (booked from another browser): no second
                # demo; the answer is a booking's, as it would be for anyone.
                return _booked(request)
            except SlotTaken as exc:
                form.add_error("slot", str(exc))
                slots = free_slots()
                status = 409
            except (FieldNotAllowed, InvalidEmail):
                form.add_error(None, "Please check the details you entered.")
            else:
                return _booked(request, booking)
        elif "slot" in form.errors and request.POST.get("slot"):
            # A time offered when the page loaded and gone since: say so, keep the rest.
            form.errors["slot"] = form.error_class([_gone_message(request.POST["slot"])])
            status = 409
    else:
        form = BookingForm(slots=slots, newsletter_form=newsletter_form, initial={"tz": zone_name})
        # Booking records an enquiry, which is screened: the engine loads while the visitor
        # picks a time, as on /contact.  Without it the first booking after a start built the
        # engine inside its transaction: 10-60 s on a busy machine, the browser waiting.
        warm_up()
    context = {
        "form": form,
        "notice": enquiry_notice(),
        "privacy_url": reverse("policy:notice"),
        "minutes": availability.slot_minutes,
        "chosen": request.POST.get("slot", ""),
        **_picker(slots, zone_name, request, request.POST.get("slot", "")),
    }
    return render(request, "booking/public/book.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
def booked(request: HttpRequest) -> HttpResponse:
    return render(request, "booking/public/booked.html", {"again": "again" in request.GET})


# --- the links in the emails --------------------------------------------------------------------
def _link_problem(request: HttpRequest, problem: str, status: int) -> HttpResponse:
    return render(request, "booking/public/link_problem.html", {"problem": problem}, status=status)


def _booking_for(request: HttpRequest, token: str) -> Booking | HttpResponse:
    try:
        wanted = read_manage_token(token)
    except BadToken:
        return _link_problem(request, "invalid", 404)
    booking = (
        Booking.objects.select_related("enquiry__contact").filter(pk=wanted.booking_id).first()
    )
    if booking is None:
        return _link_problem(request, "invalid", 404)
    if booking.status == Booking.Status.CANCELLED:
        return _link_problem(request, "cancelled", 410)
    if booking.end <= timezone.now():
        return _link_problem(request, "over", 410)
    if booking.sequence != wanted.sequence:
        return _link_problem(request, "replaced", 410)
    return booking


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def reschedule(request: HttpRequest, token: str) -> HttpResponse:
    booking = _booking_for(request, token)
    if isinstance(booking, HttpResponse):
        return booking
    zone_name = zone_or(request.POST.get("tz") or request.GET.get("tz"), booking.visitor_timezone)
    slots = free_slots(exclude=booking)
    status = 200
    form = RescheduleForm(
        request.POST or None, slots=slots, initial={"tz": zone_name}, default_zone=zone_name
    )
    if request.method == "POST":
        if form.is_valid():
            try:
                booking = do_reschedule_booking(
                    booking,
                    start=form.cleaned_data["slot"],
                    visitor_timezone=form.cleaned_data["tz"],
                )
            except SlotTaken as exc:
                form.add_error("slot", str(exc))
                slots, status = free_slots(exclude=booking), 409
            except NotChangeable:
                return _link_problem(request, "over", 410)
            else:
                url = reverse("booking_public:reschedule", args=[make_manage_token(booking)])
                return HttpResponseRedirect(f"{url}?done=moved", status=303)
        elif "slot" in form.errors and request.POST.get("slot"):
            form.errors["slot"] = form.error_class([_gone_message(request.POST["slot"])])
            status = 409
    # Its own time is offered too (it is free for it): not as a choice to move to.
    slots = [s for s in slots if s.start != booking.start]
    context = {
        "booking": booking,
        "when": meeting_time(booking),
        "form": form,
        "done": request.GET.get("done", ""),
        "cancel_url": reverse("booking_public:cancel", args=[token]),
        "chosen": request.POST.get("slot", ""),
        **_picker(slots, zone_name, request, request.POST.get("slot", "")),
    }
    return render(request, "booking/public/reschedule.html", context, status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def cancel(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks; only the POST cancels (link scanners open every link in an email)."""
    booking = _booking_for(request, token)
    if isinstance(booking, HttpResponse):
        return booking
    if request.method == "POST":
        try:
            do_cancel_booking(booking, actor_label="demo booking page")
        except NotChangeable:
            return _link_problem(request, "over", 410)
        return render(request, "booking/public/cancelled.html", {"when": meeting_time(booking)})
    return render(
        request,
        "booking/public/cancel.html",
        {
            "when": meeting_time(booking),
            "reschedule_url": reverse("booking_public:reschedule", args=[token]),
        },
    )


def _host_feed(token: str):
    from .models import DemoHost

    if not token:
        raise Http404("no such feed")
    # Only an operator's: a deactivated one's calendar app must stop getting the people they were
    # to meet, as their sessions and API tokens stop (web.actions.do_deactivate_operator).
    host = (
        DemoHost.objects.select_related("user")
        .filter(feed_token=token, user__is_active=True, user__is_staff=True)
        .first()
    )
    if host is None:
        raise Http404("no such feed")
    return host


@require_http_methods(["GET", "HEAD"])
def feed(request: HttpRequest, token: str) -> HttpResponse:
    """An operator's upcoming demos as a calendar to subscribe to.  Public, because calendar
    apps cannot sign in: the secret token in the address is the key, and the operator can
    renew it (which stops the old address) on the calendar page."""
    from .invitations import feed as build_feed

    host = _host_feed(token)
    bookings = (
        Booking.objects.filter(host=host, status=Booking.Status.CONFIRMED, end__gt=timezone.now())
        .select_related("enquiry__contact", "host__user")
        .order_by("start")
    )
    body = build_feed(bookings, f"Demos: {host.display_name}")
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response
