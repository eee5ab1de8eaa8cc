"""Objects for the operator's booking pages, or 404."""

from __future__ import annotations

from django.shortcuts import get_object_or_404

from .models import Booking


def booking_or_404(pk: int) -> Booking:
    return get_object_or_404(
        Booking.objects.select_related("enquiry__contact", "host__user"), pk=pk
    )
