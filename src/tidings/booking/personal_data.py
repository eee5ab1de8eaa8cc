"""Bookings in a person's access package, and their erasure (see ``audience/sources.py``)."""

from __future__ import annotations

from tidings.audience.sources import model_source, register

from .models import Booking


def register_sources() -> None:
    register(
        model_source(
            "demo bookings",
            Booking,
            of="enquiry__contact",
            record_kind="enquiry",  # a booking is part of its enquiry, and goes with it
            columns=(
                ("enquiry", "enquiry_id"),
                "start",
                "end",
                ("your_timezone", "visitor_timezone"),
                ("status", Booking.get_status_display),
                ("with", "host.display_name"),
                ("booked_at", "created_at"),
                "cancelled_at",
            ),
            order_by=("start", "pk"),
            related=("host__user",),
            order=29,  # found before anything changes; removed before the enquiries they belong to
        )
    )
