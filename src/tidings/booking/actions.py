"""Every change to demo bookings and their settings goes through these named actions.

Each is one transaction that writes its audit entry (ids and counts, never names or addresses).
Emails are queued with ``campaigns.mail.send_system_email``, whose queue row is written in the
same transaction: a booking that rolls back sends nothing, and one that commits cannot lose its
invitation (the delivery engine sends it after the commit).

Races: ``do_book_demo`` and ``do_reschedule_booking`` lock the demo hosts' rows
(``SELECT ... FOR UPDATE``) before they look at who is free, so two visitors asking for the
same slot are served one after the other, and the second sees the first's booking; the unique
constraint on (host, start) of booked demos is the backstop.  Either way the loser gets
``SlotTaken``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.urls import reverse
from django.utils import timezone

from tidings import signals
from tidings.audience.actions import do_sign_up
from tidings.audience.models import Contact, SignupForm
from tidings.audience.tokens import absolute_url
from tidings.campaigns.mail import send_system_email
from tidings.crm.actions import WEB_FORM, do_note_demo_booked, do_receive_enquiry
from tidings.lib.audit import audit

from . import slots as slot_rules
from .invitations import invitation_attachment
from .models import Availability, Booking, DemoHost, new_feed_token
from .tokens import cancel_url, reschedule_url


class BookingError(ValueError):
    """A booking the rules do not allow; the message is for the visitor (no personal data)."""


class SlotTaken(BookingError):
    def __init__(self) -> None:
        # The same words whoever holds the time: the page must not tell a visitor that an
        # address they typed has a demo booked (the view says more to the browser that booked).
        super().__init__(
            "That time was just taken. If you booked it yourself, you already hold it: the "
            "invitation we emailed you has links to move or cancel it. Otherwise, please pick "
            "another time."
        )


class TimeNotOffered(SlotTaken):
    """The time is not one the rules offer now, whoever books: it has passed, is within the
    minimum notice, is further ahead than bookings are taken, or was never a demo time (a page
    left open overnight, an edited form).  Nobody took it, so the visitor is not told so."""

    def __init__(self) -> None:
        BookingError.__init__(
            self,
            "That time can no longer be booked: it is too soon, has passed, or is further ahead "
            "than we take bookings. Please pick one of the times shown.",
        )


def is_not_offered(start: datetime | None, now: datetime | None = None) -> bool:
    """True when ``start`` is not a time the rules offer now, even with every host free: the
    reason to give is TimeNotOffered's, not SlotTaken's."""
    if start is None:
        return True
    now = now or timezone.now()
    host_ids = list(DemoHost.objects.filter(is_active=True).values_list("pk", flat=True))
    rules = rules_for(Availability.current())
    return all(
        slot.start != start.astimezone(UTC)
        for slot in slot_rules.free_slots(rules, host_ids, [], now)
    )


class AlreadyBooked(BookingError):
    """The person already holds a demo at that time: nothing was booked again."""

    def __init__(self, booking: Booking) -> None:
        self.booking = booking
        super().__init__("You already hold this time: nothing was changed.")


class NotChangeable(BookingError):
    pass


# --- reading the rules ------------------------------------------------------------------------
def rules_for(availability: Availability) -> slot_rules.Rules:
    weekly = {
        int(day): [(time.fromisoformat(s), time.fromisoformat(e)) for s, e in windows]
        for day, windows in (availability.weekly_hours or {}).items()
    }
    blocked = frozenset(date.fromisoformat(d) for d in availability.blocked_dates or ())
    return slot_rules.Rules(
        zone=availability.zone,
        weekly=weekly,
        slot=timedelta(minutes=availability.slot_minutes),
        buffer=timedelta(minutes=availability.buffer_minutes),
        notice=timedelta(hours=availability.notice_hours),
        horizon_days=availability.horizon_days,
        per_day_limit=availability.per_day_limit,
        blocked=blocked,
    )


def _busy(host_ids: Iterable[int], now: datetime, exclude: int | None) -> list[slot_rules.Busy]:
    # From the start of yesterday: a meeting earlier today still counts to today's limit.
    bookings = Booking.objects.filter(
        host_id__in=list(host_ids),
        status=Booking.Status.CONFIRMED,
        end__gt=now - timedelta(days=2),
    )
    if exclude is not None:
        bookings = bookings.exclude(pk=exclude)
    return [
        slot_rules.Busy(host, start, end)
        for host, start, end in bookings.values_list("host_id", "start", "end")
    ]


def free_slots(
    *, now: datetime | None = None, exclude: Booking | None = None
) -> list[slot_rules.Slot]:
    """The slots a visitor can book now (``exclude``: a booking being moved, whose own time
    counts as free)."""
    now = now or timezone.now()
    availability = Availability.current()
    host_ids = list(DemoHost.objects.filter(is_active=True).values_list("pk", flat=True))
    busy = _busy(host_ids, now, exclude.pk if exclude else None)
    return slot_rules.free_slots(rules_for(availability), host_ids, busy, now)


def choose_host(host_ids: Iterable[int], *, now: datetime, prefer: int | None = None) -> DemoHost:
    """Round robin, fairly: of the hosts free for the slot, the one with the fewest upcoming
    demos, then the one assigned least recently (never first), then the longest-serving.
    ``prefer`` (a moved booking's host) wins when free, so a move keeps the same person."""
    candidates = DemoHost.objects.filter(pk__in=list(host_ids))
    if prefer is not None and candidates.filter(pk=prefer).exists():
        return candidates.get(pk=prefer)
    upcoming = Count(
        "bookings", filter=Q(bookings__status=Booking.Status.CONFIRMED, bookings__end__gt=now)
    )
    chosen = (
        candidates.annotate(upcoming=upcoming)
        .order_by("upcoming", F("last_assigned_at").asc(nulls_first=True), "pk")
        .first()
    )
    assert chosen is not None  # free_slots() offers a slot only with a free host
    return chosen


def _lock_hosts() -> None:
    """Serialise bookings: every booking transaction takes the hosts' row locks, in one order."""
    list(DemoHost.objects.select_for_update().order_by("pk").values_list("pk", flat=True))


def _slot_at(start: datetime, now: datetime, exclude: Booking | None = None) -> slot_rules.Slot:
    for slot in free_slots(now=now, exclude=exclude):
        if slot.start == start:
            return slot
    raise TimeNotOffered() if is_not_offered(start, now) else SlotTaken()


def _place(booking: Booking, slot: slot_rules.Slot, now: datetime) -> None:
    host = choose_host(slot.hosts, now=now, prefer=booking.host_id if booking.pk else None)
    booking.host = host
    booking.start, booking.end = slot.start, slot.end
    # A reminder whose time has already gone is not sent: a demo booked (or moved) 20 hours
    # ahead gets the hour's reminder, not a "tomorrow" one right after its confirmation.
    booking.reminded_hours = lead_passed(
        Availability.current().reminder_hours or [], booking.start, now
    )
    try:
        with transaction.atomic():
            booking.save()
    except IntegrityError:  # the constraint caught what the lock should have: still, one wins
        raise SlotTaken() from None
    DemoHost.objects.filter(pk=host.pk).update(last_assigned_at=now)


# --- emails -----------------------------------------------------------------------------------
def meeting_time(booking: Booking) -> str:
    """ "Tuesday 3 March 2026, 14:00-14:45 (Europe/Paris)": in the visitor's timezone."""
    zone = ZoneInfo(booking.visitor_timezone)
    start, end = booking.start.astimezone(zone), booking.end.astimezone(zone)
    return (
        f"{start.strftime('%A')} {start.day} {start.strftime('%B %Y')}, "
        f"{start.strftime('%H:%M')}-{end.strftime('%H:%M')} ({booking.visitor_timezone})"
    )


def _email(booking: Booking, key: str, *, invitation: bool = True) -> None:
    send_system_email(
        booking.enquiry.contact,
        key,
        {
            "meeting_time": meeting_time(booking),
            "meeting_minutes": booking.minutes,
            "reschedule_url": reschedule_url(booking),
            "cancel_url": cancel_url(booking),
            "booking_url": absolute_url(reverse("booking_public:book")),
        },
        attachments=[invitation_attachment(booking)] if invitation else [],
    )


# --- booking, moving, cancelling ----------------------------------------------------------------
@dataclass(frozen=True)
class Newsletter:
    """The visitor ticked the newsletter box: the sign-up form offered, and its exact words."""

    signup_form: SignupForm
    wording_text: str
    ip: str | None = None


@transaction.atomic
def do_book_demo(
    person: Mapping[str, Any],
    *,
    start: datetime,
    visitor_timezone: str,
    newsletter: Newsletter | None = None,
    now: datetime | None = None,
) -> Booking:
    """Book the demo starting at ``start`` (UTC) for the person with these details.

    The contact is created or completed under the enquiry purpose, an enquiry from the web form
    is recorded (its ``last_contact`` clock set now), and the invitation is emailed.  With
    ``newsletter``, the person is signed up through that sign-up form (double opt-in and its
    consent record, exactly as the form itself would).  Raises SlotTaken, AlreadyBooked (the
    person, by address, already holds a demo at that time: a second submission of the same
    form books, sends and records nothing), and what ``do_receive_enquiry`` raises
    (FieldNotAllowed, InvalidEmail).
    """
    now = now or timezone.now()
    ZoneInfo(visitor_timezone)  # a zone we know, or ZoneInfoNotFoundError (a ValueError)
    _lock_hosts()
    held = held_by(person.get("email"), start)
    if held is not None:
        raise AlreadyBooked(held)
    slot = _slot_at(start.astimezone(UTC), now)
    if newsletter is not None:
        do_sign_up(
            newsletter.signup_form,
            person,
            list_ids=list(newsletter.signup_form.lists.values_list("pk", flat=True)),
            wording_text=newsletter.wording_text,
            ip=newsletter.ip,
        )
    enquiry = do_receive_enquiry(
        person,
        channel=WEB_FORM,
        message="Booked a demo on the booking page.",
        received_at=now,
        actor_label="demo booking page",
    )
    booking = Booking(enquiry=enquiry, visitor_timezone=visitor_timezone, created_at=now)
    _place(booking, slot, now)
    audit(
        "booking.booked",
        actor_label="demo booking page",
        obj=booking,
        enquiry=enquiry.pk,
        host=booking.host_id,
        newsletter=newsletter is not None,
    )
    _email(booking, "demo_booked")
    # The CRM: the host has the enquiry, its next action is the demo's day, operators are told.
    do_note_demo_booked(enquiry, host=booking.host.user, on=timezone.localdate(booking.start))
    booking_id, contact_id = booking.pk, enquiry.contact_id
    transaction.on_commit(
        lambda: signals.demo_booked.send(
            sender=Booking, booking_id=booking_id, contact_id=contact_id
        )
    )
    return booking


def held_by(email: object, start: datetime) -> Booking | None:
    """The confirmed demo at ``start`` of the contact with this address, if any."""
    if not isinstance(email, str) or not email:
        return None
    contact_ids = list(Contact.objects.with_email(email).values_list("pk", flat=True))
    return (
        Booking.objects.filter(
            enquiry__contact_id__in=contact_ids,
            status=Booking.Status.CONFIRMED,
            start=start.astimezone(UTC),
        )
        .select_related("enquiry")
        .first()
    )


def _touch_enquiry(booking: Booking, now: datetime) -> None:
    # Being in touch about the demo is contact: the enquiry's retention clock starts again.
    type(booking.enquiry).objects.filter(pk=booking.enquiry_id).update(last_contact_at=now)


@transaction.atomic
def do_reschedule_booking(
    booking: Booking, *, start: datetime, visitor_timezone: str | None = None, now=None
) -> Booking:
    """Move an upcoming booking to another free slot (the same host when free); the visitor
    gets the updated invitation (same UID, SEQUENCE + 1).  Raises SlotTaken, NotChangeable."""
    now = now or timezone.now()
    _lock_hosts()
    booking = Booking.objects.select_for_update().select_related("enquiry").get(pk=booking.pk)
    if booking.status != Booking.Status.CONFIRMED or booking.end <= now:
        raise NotChangeable("This demo can no longer be changed.")
    if visitor_timezone:
        ZoneInfo(visitor_timezone)
        booking.visitor_timezone = visitor_timezone
    previous = booking.start
    slot = _slot_at(start.astimezone(UTC), now, exclude=booking)
    booking.sequence += 1
    _place(booking, slot, now)
    _touch_enquiry(booking, now)
    audit(
        "booking.rescheduled",
        actor_label="demo booking page",
        obj=booking,
        moved_by_minutes=int((booking.start - previous).total_seconds() // 60),
        host=booking.host_id,
    )
    _email(booking, "demo_rescheduled")
    return booking


@transaction.atomic
def do_cancel_booking(
    booking: Booking, *, actor: Any = None, actor_label: str = "", now=None
) -> Booking:
    """Cancel an upcoming booking; the visitor gets the cancellation (METHOD:CANCEL).  Raises
    NotChangeable when it is over or already cancelled."""
    now = now or timezone.now()
    booking = Booking.objects.select_for_update().select_related("enquiry").get(pk=booking.pk)
    if booking.status != Booking.Status.CONFIRMED or booking.end <= now:
        raise NotChangeable("This demo can no longer be changed.")
    booking.status = Booking.Status.CANCELLED
    booking.cancelled_at = now
    booking.sequence += 1
    booking.save(update_fields=["status", "cancelled_at", "sequence", "updated_at"])
    _touch_enquiry(booking, now)
    audit(
        "booking.cancelled",
        actor=actor,
        actor_label=actor_label or ("operator" if actor else "demo booking page"),
        obj=booking,
    )
    _email(booking, "demo_cancelled")
    return booking


# --- reminders ----------------------------------------------------------------------------------
def lead_passed(leads: Iterable[int], start: datetime, now: datetime) -> int | None:
    """The smallest of the reminder leads (hours before ``start``) whose time has come at
    ``now``, or None when none has."""
    return min((lead for lead in leads if start - timedelta(hours=lead) <= now), default=None)


def do_send_demo_reminders(*, now: datetime | None = None) -> int:
    """Email the reminder that is due for each upcoming demo (``Availability.reminder_hours``);
    returns how many were queued.

    Service mail about the booking the person made, not marketing: it goes whatever their
    newsletter consent, with the links to move or cancel the demo (no invitation attached: the
    one they have is unchanged).  Only the latest due reminder of a demo goes: a worker that was
    stopped for a day sends the hour's reminder, not a day's one too.  Each reminder is claimed
    by a conditional UPDATE of the booking's ``reminded_hours`` (the same status, time and
    sequence as read), in the transaction that queues the mail: with two workers, or a run
    repeated after a crash, exactly one claim changes a row and one reminder goes.  Cancelled,
    past and moved demos match no claim; an erased person's bookings are gone, and their
    queued mail is blanked by the erasure like the rest of their system mail.
    """
    now = now or timezone.now()
    leads = [int(lead) for lead in Availability.current().reminder_hours or []]
    if not leads:
        return 0
    candidates = Booking.objects.filter(
        status=Booking.Status.CONFIRMED,
        start__gt=now,
        start__lte=now + timedelta(hours=max(leads)),
    ).order_by("start", "pk")
    sent = 0
    for booking in candidates:
        due = lead_passed(leads, booking.start, now)
        if due is None or (booking.reminded_hours is not None and booking.reminded_hours <= due):
            continue
        with transaction.atomic():
            claimed = Booking.objects.filter(
                pk=booking.pk,
                status=Booking.Status.CONFIRMED,
                start=booking.start,
                sequence=booking.sequence,
                reminded_hours=booking.reminded_hours,
            ).update(reminded_hours=due)
            if claimed != 1:  # another worker sent it, or the demo changed meanwhile
                continue
            booking.reminded_hours = due
            audit(
                "booking.reminded",
                actor_label="demo reminders",
                obj=booking,
                hours_before=due,
            )
            _email(booking, "demo_reminder", invitation=False)
        sent += 1
    return sent


# --- settings -----------------------------------------------------------------------------------
AVAILABILITY_FIELDS = (
    "timezone",
    "weekly_hours",
    "slot_minutes",
    "buffer_minutes",
    "notice_hours",
    "horizon_days",
    "per_day_limit",
    "blocked_dates",
    "newsletter_form",
    "reminder_hours",
)


@transaction.atomic
def do_update_availability(values: Mapping[str, Any], *, actor: Any) -> list[str]:
    """Change the booking rules; returns the names of the settings that changed."""
    availability = Availability.objects.select_for_update().get(pk=Availability.current().pk)
    changed = [
        k for k in AVAILABILITY_FIELDS if k in values and getattr(availability, k) != values[k]
    ]
    for name in changed:
        setattr(availability, name, values[name])
    if changed:
        availability.save(update_fields=[*changed, "updated_at"])
        audit("booking.availability_updated", actor=actor, obj=availability, fields=changed)
    return changed


@transaction.atomic
def do_set_demo_hosts(users: Iterable[Any], *, actor: Any) -> list[int]:
    """The operators who give demos are exactly ``users``; returns the hosts' ids.  Hosts who
    leave keep their booked demos (and their feed), but get no new ones."""
    # In the order given (not a set's): a new host's id decides ties in the round robin.
    wanted = list(dict.fromkeys(user.pk for user in users))
    DemoHost.objects.exclude(user_id__in=wanted).update(is_active=False)
    for user_id in wanted:
        DemoHost.objects.update_or_create(user_id=user_id, defaults={"is_active": True})
    ids = sorted(DemoHost.objects.filter(is_active=True).values_list("pk", flat=True))
    audit("booking.hosts_set", actor=actor, hosts=ids)
    return ids


@transaction.atomic
def do_renew_feed_token(host: DemoHost, *, actor: Any) -> str:
    """A new secret address for the host's calendar feed; the old one stops working."""
    host.feed_token = new_feed_token()
    host.save(update_fields=["feed_token"])
    audit("booking.feed_renewed", actor=actor, obj=host)
    return host.feed_token


@transaction.atomic
def do_revoke_feed_token(host: DemoHost, *, actor: Any) -> None:
    host.feed_token = ""
    host.save(update_fields=["feed_token"])
    audit("booking.feed_revoked", actor=actor, obj=host)
