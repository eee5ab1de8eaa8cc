"""The operator's demo pages: upcoming demos by day, one demo, availability, calendar feed."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from tidings.audience.tokens import absolute_url
from tidings.lib.access import OperatorRequest, operator_required

from .access import booking_or_404
from .actions import (
    NotChangeable,
    do_cancel_booking,
    do_renew_feed_token,
    do_revoke_feed_token,
    do_set_demo_hosts,
    do_update_availability,
)
from .forms import AvailabilityForm
from .models import Availability, Booking, DemoHost

UPCOMING_LIMIT = 500


def _wall(moment, zone):
    # Naive wall-clock time: templates would convert an aware one to settings.TIME_ZONE.
    return moment.astimezone(zone).replace(tzinfo=None)


@operator_required(perm="people")
def upcoming(request: OperatorRequest) -> HttpResponse:
    availability = Availability.current()
    zone = availability.zone
    bookings = list(
        Booking.objects.filter(status=Booking.Status.CONFIRMED, end__gt=timezone.now())
        .select_related("enquiry__contact", "host__user")
        .order_by("start", "pk")[:UPCOMING_LIMIT]
    )
    days: dict = defaultdict(list)
    for booking in bookings:
        days[booking.start.astimezone(zone).date()].append(
            (booking, _wall(booking.start, zone), _wall(booking.end, zone))
        )
    host = DemoHost.objects.filter(user=request.user).first()
    feed_url = ""
    if host is not None and host.feed_token:
        feed_url = absolute_url(reverse("booking_public:feed", args=[host.feed_token]))
    context = {
        "days": sorted(days.items()),
        "zone": availability.timezone,
        "host": host,
        "feed_url": feed_url,
        "truncated": len(bookings) == UPCOMING_LIMIT,
    }
    return render(request, "booking/upcoming.html", context)


@operator_required(perm="people")
@require_http_methods(["GET", "HEAD", "POST"])
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    booking = booking_or_404(pk)
    if request.method == "POST":
        try:
            do_cancel_booking(booking, actor=request.user)
        except NotChangeable as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Cancelled. The visitor was emailed the cancellation.")
        return redirect("booking:detail", pk=pk)
    zone = Availability.current().zone
    context = {
        "booking": booking,
        "start": _wall(booking.start, zone),
        "end": _wall(booking.end, zone),
        "zone": str(zone),
    }
    return render(request, "booking/detail.html", context)


@operator_required(perm="settings")
@require_http_methods(["GET", "HEAD", "POST"])
def availability(request: HttpRequest) -> HttpResponse:
    current = Availability.current()
    hosts = [h.user for h in DemoHost.objects.filter(is_active=True).select_related("user")]
    form = AvailabilityForm(
        request.POST or None, initial=AvailabilityForm.initial_for(current, hosts)
    )
    if request.method == "POST" and form.is_valid():
        do_update_availability(form.availability_values(), actor=request.user)
        do_set_demo_hosts(form.cleaned_data["hosts"], actor=request.user)
        messages.success(request, "Saved.")
        return redirect("booking:availability")
    return render(
        request,
        "booking/availability.html",
        {"form": form, "book_url": absolute_url(reverse("booking_public:book"))},
    )


@operator_required(perm="people")
@require_POST
def feed_token(request: OperatorRequest) -> HttpResponse:
    """Renew (or, with ``revoke``, switch off) the signed-in operator's calendar feed."""
    host = DemoHost.objects.filter(user=request.user).first()
    if host is None:
        messages.error(request, "You do not give demos, so you have no demo calendar.")
    elif request.POST.get("revoke"):
        do_revoke_feed_token(host, actor=request.user)
        messages.success(request, "The calendar address no longer works.")
    else:
        do_renew_feed_token(host, actor=request.user)
        messages.success(request, "A new calendar address: the old one no longer works.")
    return redirect("booking:upcoming")
