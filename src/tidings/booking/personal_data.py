"""Bookings in a person's access package, and their erasure (see ``rights/sources.py``)."""

from __future__ import annotations

from typing import Any

from .models import Booking


def _of(contact: Any):
    return Booking.objects.filter(enquiry__contact=contact)


def export_bookings(contact: Any) -> list[dict[str, Any]]:
    return [
        {
            "enquiry": booking.enquiry_id,
            "start": booking.start.isoformat(),
            "end": booking.end.isoformat(),
            "your_timezone": booking.visitor_timezone,
            "status": booking.get_status_display(),
            "with": booking.host.display_name,
            "booked_at": booking.created_at.isoformat(),
            "cancelled_at": booking.cancelled_at.isoformat() if booking.cancelled_at else None,
        }
        for booking in _of(contact).select_related("host__user").order_by("start", "pk")
    ]


def erase_bookings(contact: Any) -> int:
    """Delete the person's bookings (idempotent: a second run finds none)."""
    _, per_model = _of(contact).delete()
    return per_model.get(Booking._meta.label, 0)
