"""Bookings are personal data: registered for access and erasure, and kept as long as their
enquiry (the policy's enquiry rule)."""

from __future__ import annotations

import pytest

from tidings.audience.sources import covered_models, sources
from tidings.booking.models import Booking
from tidings.crm.models import Enquiry

from .helpers import TUESDAY_9, book, hosts

pytestmark = pytest.mark.django_db


def bookings_source():
    (source,) = [s for s in sources() if s.name == "demo bookings"]
    return source


def test_bookings_are_a_registered_source_under_the_enquiry_rule():
    assert Booking in covered_models()
    assert bookings_source().record_kind == "enquiry"


def test_the_access_export_lists_a_persons_bookings(monday):
    hosts("grace")
    booking = book(TUESDAY_9, tz="Europe/Paris")
    (row,) = bookings_source().export(booking.enquiry.contact)
    assert row["start"] == "2026-11-24T09:00:00+00:00"
    assert row["your_timezone"] == "Europe/Paris" and row["with"] == "Grace"
    assert row["status"] == "Booked"


def test_erasure_removes_the_bookings_and_is_safe_to_run_again(monday):
    hosts("grace")
    contact = book(TUESDAY_9).enquiry.contact
    assert bookings_source().erase(contact) == 1
    assert bookings_source().erase(contact) == 0
    assert not Booking.objects.exists()


def test_a_booking_goes_with_its_enquiry(monday):
    hosts("grace")
    book(TUESDAY_9)
    Enquiry.objects.all().delete()  # what the retention sweep does to an expired enquiry
    assert not Booking.objects.exists()
