"""Demo booking: when demos can be booked (``Availability``), who gives them (``DemoHost``) and
the demos booked (``Booking``).

A booking belongs to an enquiry (``crm.Enquiry``): the person is the enquiry's contact, and the
booking is kept as long as the enquiry is (the policy's enquiry rule, from its ``last_contact``
clock); it is deleted with it (CASCADE), by the retention sweep or an erasure.  Change bookings
only through ``booking/actions.py``.
"""

from __future__ import annotations

import secrets
import uuid
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.utils import timezone

from tidings.crm.models import Enquiry

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def default_weekly_hours() -> dict[str, list[list[str]]]:
    """Monday to Friday, 09:00-12:30 and 13:30-17:00."""
    return {str(day): [["09:00", "12:30"], ["13:30", "17:00"]] for day in range(5)}


def default_reminder_hours() -> list[int]:
    """A reminder a day before and an hour before the demo."""
    return [24, 1]


class Availability(models.Model):
    """The one set of booking rules (a single row, ``Availability.current()``)."""

    timezone = models.CharField(
        max_length=64,
        default=settings.TIME_ZONE,
        help_text="The timezone the weekly hours and blocked dates are in.",
    )
    # {"0": [["09:00", "12:30"], ["13:30", "17:00"]], ...}: weekday (Monday 0) -> windows.
    weekly_hours = models.JSONField(default=default_weekly_hours, blank=True)
    slot_minutes = models.PositiveSmallIntegerField(default=45)
    buffer_minutes = models.PositiveSmallIntegerField(
        default=15, help_text="Free time kept between two meetings of the same person."
    )
    notice_hours = models.PositiveSmallIntegerField(
        default=24, help_text="How far ahead a demo must be booked."
    )
    horizon_days = models.PositiveSmallIntegerField(
        default=30, help_text="How many days ahead demos can be booked."
    )
    per_day_limit = models.PositiveSmallIntegerField(
        default=4, help_text="Demos a host gives in one day, at most."
    )
    # [24, 1]: reminders emailed this many hours before each demo (largest first); []: none.
    reminder_hours = models.JSONField(default=default_reminder_hours, blank=True)
    # ["2026-12-25", ...]: days nobody gives demos (in ``timezone``).
    blocked_dates = models.JSONField(default=list, blank=True)
    newsletter_form = models.ForeignKey(
        "audience.SignupForm",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The sign-up form whose lists the booking page offers (unticked); blank: none.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "availability"

    def __str__(self) -> str:
        return "Demo availability"

    @classmethod
    def current(cls) -> Availability:
        row = cls.objects.order_by("pk").first()
        return row if row is not None else cls.objects.create()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def new_feed_token() -> str:
    return secrets.token_urlsafe(24)


class DemoHost(models.Model):
    """An operator who gives demos.  Assigned in turn: see ``actions.choose_host``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="demo_host"
    )
    is_active = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    # The secret in the calendar feed's address (calendar apps cannot sign in); blank: no feed.
    feed_token = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()


class Booking(models.Model):
    class Status(models.TextChoices):
        CONFIRMED = "confirmed", "Booked"
        CANCELLED = "cancelled", "Cancelled"

    enquiry = models.ForeignKey(Enquiry, on_delete=models.CASCADE, related_name="bookings")
    host = models.ForeignKey(DemoHost, on_delete=models.PROTECT, related_name="bookings")
    start = models.DateTimeField()
    end = models.DateTimeField()
    visitor_timezone = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CONFIRMED)
    # The invitation's UID stays the same for the booking's life; SEQUENCE counts its changes.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sequence = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The reminder most recently sent, or passed over because its time had gone when the demo
    # was booked or moved: its lead in hours (a day's reminder is 24, an hour's 1); null: none
    # yet.  A reminder goes only when its lead is smaller than this, and is claimed by changing
    # it with a conditional UPDATE, so two workers never both send it (booking/reminders.py).
    reminded_hours = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["start", "pk"]
        constraints = [
            # The race backstop: one host, one booked demo starting at a given time.
            models.UniqueConstraint(
                fields=["host", "start"],
                condition=models.Q(status="confirmed"),
                name="booking_one_demo_per_host_and_start",
            )
        ]
        indexes = [models.Index(fields=["status", "start"])]

    def __str__(self) -> str:
        return f"Demo #{self.pk}"

    @property
    def contact(self):
        return self.enquiry.contact

    @property
    def is_upcoming(self) -> bool:
        return self.status == self.Status.CONFIRMED and self.end > timezone.now()

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)
