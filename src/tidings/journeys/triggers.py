"""What puts people into journeys and takes them out.

Into: a confirmed subscription (``signals.contact_subscribed``) to a list of an active
journey's topic; a custom event posted through the API (``do_record_event``); a contract's end,
or a date attribute (once, or yearly: a birthday), coming round (``enrol_by_date``, daily); a
person starting to match a saved segment (``segments.check_segments``, incremental, each
minute); a person's first click of a campaign's link (``signals.campaign_links_clicked``, after
the tracking ingest wrote it); a sign-up form's submission once the address confirmed it
(``signals.form_submitted``).  Out: an unsubscribe (``signals.contacts_unsubscribed``: the
person's own, or an operator's removal from a list, a batch at a time), an objection, a hard
bounce or a complaint end every open enrolment of the person at once
(``actions.do_exit_contacts``); erasure anonymises them (``personal_data``).  A goal's event
ends the enrolments it converts.

Receivers run after the sender's transaction committed (the signals are sent on commit); each
enrolment is its own transaction, so one journey's refusal never stops another's.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.fields.json import KT
from django.db.models.functions import Substr
from django.tasks import task
from django.utils import timezone

from tidings import signals
from tidings.audience.emails import InvalidEmail, normalise_email
from tidings.audience.models import Contact, MailingList
from tidings.policy import get_policy

from .actions import (
    NotEnrolled,
    do_enrol,
    do_event_arrived,
    do_exit_contact,
    do_exit_contacts,
    do_record_goal,
    is_id,
)
from .models import Journey, JourneyEvent

logger = logging.getLogger("tidings.journeys")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")  # an attribute key, as segments spell it


def _enrol_all(journeys: Any, contact: Contact, source: str) -> int:
    entered = 0
    for journey in journeys:
        try:
            do_enrol(journey, contact, source=source)
        except NotEnrolled:
            continue
        entered += 1
    return entered


def active(trigger: str) -> Any:
    return Journey.objects.filter(status=Journey.Status.ACTIVE, trigger=trigger).order_by("pk")


def on_subscribed(sender: Any, *, contact_id: int, list_id: int, **kwargs: Any) -> None:
    mailing_list = MailingList.objects.filter(pk=list_id).first()
    contact = Contact.objects.filter(pk=contact_id).first()
    if mailing_list is None or contact is None:
        return
    journeys = [
        j
        for j in active(Journey.Trigger.CONFIRMED).filter(topic=mailing_list.topic)
        if j.trigger_params.get("list") in (None, list_id)
    ]
    _enrol_all(journeys, contact, "confirmed")


def on_enquiry(sender: Any, *, contact_id: int, **kwargs: Any) -> None:
    """CRM enquiries start only journeys that activation allowed: service messages, or
    marketing journeys without a send step (an operator notification)."""
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is not None:
        _enrol_all(active(Journey.Trigger.ENQUIRY), contact, "enquiry")


def on_demo_booked(sender: Any, *, contact_id: int, **kwargs: Any) -> None:
    """A booked demo is the event "demo_booked" (a goal, a wait_event) and a trigger (CRM:
    service journeys or operator notifications, as for enquiries)."""
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        return
    do_event_arrived(contact.pk, "demo_booked")
    do_record_goal(contact.pk, "demo_booked")
    _enrol_all(active(Journey.Trigger.DEMO), contact, "demo booked")


def _exit(reason: str):
    def receive(sender: Any, *, contact_id: int | None = None, **kwargs: Any) -> None:
        if contact_id is None:
            return
        if reason == "hard bounce" and not kwargs.get("hard"):
            return
        do_exit_contact(contact_id, reason)

    receive.__name__ = f"exit_{reason.replace(' ', '_')}"
    return receive


def on_unsubscribed(sender: Any, *, contact_ids: tuple[int, ...], **kwargs: Any) -> None:
    """People left a list (their own unsubscribe, or an operator removed them, thousands at
    once): every open enrolment of theirs ends, in one batch."""
    do_exit_contacts(contact_ids, "unsubscribed")


def connect() -> None:
    signals.contact_subscribed.connect(on_subscribed, dispatch_uid="journeys.subscribed")
    signals.enquiry_created.connect(on_enquiry, dispatch_uid="journeys.enquiry")
    signals.demo_booked.connect(on_demo_booked, dispatch_uid="journeys.demo")
    signals.campaign_links_clicked.connect(on_links_clicked, dispatch_uid="journeys.link")
    signals.form_submitted.connect(on_form_submitted, dispatch_uid="journeys.form")
    signals.contacts_unsubscribed.connect(
        on_unsubscribed, dispatch_uid="journeys.exit.unsubscribed"
    )
    for signal, reason in (
        (signals.contact_objected, "objected"),
        (signals.delivery_bounced, "hard bounce"),
        (signals.delivery_complained, "complaint"),
    ):
        signal.connect(_exit(reason), weak=False, dispatch_uid=f"journeys.exit.{reason}")


# --- custom events ----------------------------------------------------------------------------
def _find_contact(contact: str | int | None) -> Contact | None:
    if contact is None or contact == "":
        return None
    # An id is ASCII digits only: "²" and "٣" are digits to str.isdigit() but not to int().
    if isinstance(contact, int) or (contact.isascii() and contact.isdigit()):
        return Contact.objects.filter(pk=int(contact)).first()
    try:
        email = normalise_email(str(contact))
    except InvalidEmail:
        return None
    return Contact.objects.with_email(email).first()


def do_record_event(
    contact: str | int | None,
    name: str,
    properties: Mapping[str, Any] | None = None,
    *,
    key: str = "",
) -> bool:
    """A custom event about a person (an address or a contact id): ends enrolments that have it
    as a goal and starts journeys it triggers.  True if it was used; an unknown (or erased)
    person, or a key seen before, is dropped — the caller must not tell which (the API answers
    202 either way).  ``properties`` are not stored."""
    with transaction.atomic():
        if key:
            try:
                with transaction.atomic():
                    JourneyEvent.objects.create(key=key[:200])
            except IntegrityError:
                return False
        person = _find_contact(contact)
        if person is None:
            return False
    do_event_arrived(person.pk, name)
    do_record_goal(person.pk, name)
    journeys = [j for j in active(Journey.Trigger.EVENT) if j.trigger_params.get("name") == name]
    _enrol_all(journeys, person, f"event:{name}"[:60])
    return True


# --- dates ------------------------------------------------------------------------------------
def day_keys(day: date, *, yearly: bool) -> list[str]:
    """The ISO texts (``YYYY-MM-DD``, or ``MM-DD`` every year) of a date attribute that come
    round on ``day``.  Yearly, 29 February comes round on 28 February of other years."""
    if not yearly:
        return [day.isoformat()]
    keys = [day.strftime("%m-%d")]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        keys.append("02-29")
    return keys


def _attribute_people(key: str, target: date, *, yearly: bool) -> Any:
    """Contacts whose attribute ``key`` holds a date (ISO ``YYYY-MM-DD``, first ten characters,
    as the segment language reads attribute dates) that comes round on ``target``."""
    text = KT(f"attributes__{key}")
    if yearly:
        people = Contact.objects.annotate(_day=Substr(text, 6, 5)).filter(
            _day__in=day_keys(target, yearly=True)
        )
    else:
        people = Contact.objects.annotate(_day=Substr(text, 1, 10)).filter(_day=target.isoformat())
    return people.order_by("pk")


def date_field_problem(params: Mapping[str, Any]) -> str:
    """Why a date trigger's ``field`` cannot be used ("" when it can)."""
    field = params.get("field")
    if field == "contract_end":
        return "" if not params.get("yearly") else "a contract's end does not come round yearly"
    if not isinstance(field, str) or not field.startswith("attributes."):
        return 'the date field is "contract_end" or a contact attribute: "attributes.birthday"'
    key = field.removeprefix("attributes.")
    if not key or key in Contact.COLUMN_FIELDS or not _KEY.match(key):
        return f'"{field}" is not a contact attribute'
    from tidings.audience.actions import allowed_contact_fields

    allowed: set[str] = set()
    for purpose in get_policy().purposes:
        allowed |= set(allowed_contact_fields(purpose))
    if key not in allowed:
        return f'the policy allows no purpose to hold the attribute "{key}"'
    return ""


# Days a date journey catches up when no worker ran (a stopped worker, the job's time of day
# drifting past midnight): older ones are not mailed about that late.
CATCH_UP_DAYS = 7


def enrol_by_date(today: date | None = None) -> int:
    """Journeys started N days before (negative) or after a date: a contract's end (enrol the
    support contacts still at the organisation of every contract whose end is that many days
    away), or a date in a contact attribute (once, or every year: a birthday).

    Each journey remembers the last day it went through (``Journey.dates_through``), and each
    run goes through the days since, today included, up to ``CATCH_UP_DAYS``: a day on which no
    worker ran, or the hourly job's first run after midnight, never loses that day's people.
    A day already gone through is not gone through again (the entry rule would not always stop
    a second enrolment: "once at a time" after a short journey)."""
    today = today or timezone.localdate()
    entered = 0
    for journey in active(Journey.Trigger.DATE):
        last = journey.dates_through
        day = today
        if last is not None:
            day = max(last + timedelta(days=1), today - timedelta(days=CATCH_UP_DAYS - 1))
        while day <= today:
            entered += _enrol_on(journey, day)
            day += timedelta(days=1)
        if last is None or last < today:
            Journey.objects.filter(pk=journey.pk).update(dates_through=today)
    return entered


def _enrol_on(journey: Journey, today: date) -> int:
    """Enrol the people whose date comes round for ``journey`` on ``today``."""
    from tidings.crm.models import Contract, SupportContact

    params = journey.trigger_params
    target = today - timedelta(days=int(params.get("days", 0)))
    field = params.get("field", "contract_end")
    if field == "contract_end":
        organisations = Contract.objects.filter(end=target).values("organisation_id")
        people = Contact.objects.filter(
            pk__in=SupportContact.objects.filter(
                organisation_id__in=organisations, left_employer__isnull=True
            ).values("contact_id")
        ).order_by("pk")
    elif isinstance(field, str) and field.startswith("attributes.") and _KEY.match(field[11:]):
        people = _attribute_people(field[11:], target, yearly=bool(params.get("yearly")))
    else:
        logger.warning("journey %s: unknown date field", journey.pk)
        return 0
    return sum(_enrol_all([journey], contact, "date") for contact in people.iterator())


@task()
def enrol_by_date_task() -> int:
    return enrol_by_date()


# Idempotency keys are kept this long (pruned daily): a client retrying later is a new event.
EVENT_KEYS_KEPT = timedelta(days=7)


def prune_event_keys() -> int:
    return JourneyEvent.objects.filter(received_at__lt=timezone.now() - EVENT_KEYS_KEPT).delete()[0]


@task()
def prune_event_keys_task() -> int:
    return prune_event_keys()


# --- a link clicked in a campaign, a sign-up form -------------------------------------------
def on_links_clicked(sender: Any, *, clicks: list[tuple[int, int, int]], **kwargs: Any) -> None:
    """First clicks of a campaign's link by people (machine clicks never start a journey)."""
    from tidings.campaigns.models import Delivery
    from tidings.campaigns.tracking import link_url

    journeys = list(active(Journey.Trigger.LINK))
    if not journeys:
        return
    wanted = {j.trigger_params.get("campaign") for j in journeys}
    clicks = [c for c in clicks if c[1] in wanted]
    if not clicks:
        return
    contacts = dict(
        Delivery.objects.filter(pk__in={c[0] for c in clicks}).values_list("pk", "contact_id")
    )
    for delivery_id, campaign_id, index in clicks:
        contact_id = contacts.get(delivery_id)
        contact = Contact.objects.filter(pk=contact_id).first() if contact_id else None
        if contact is None:
            continue
        url = link_url(campaign_id, index)
        matching = [
            j
            for j in journeys
            if j.trigger_params.get("campaign") == campaign_id
            and j.trigger_params.get("url", "") in ("", url)
        ]
        _enrol_all(matching, contact, "link clicked")


def on_form_submitted(sender: Any, *, contact_id: int, form_id: int, **kwargs: Any) -> None:
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        return
    journeys = [j for j in active(Journey.Trigger.FORM) if j.trigger_params.get("form") == form_id]
    _enrol_all(journeys, contact, "form submitted")


# --- what a journey's trigger watches, in words -----------------------------------------------
def describe_trigger(journey: Journey) -> str:
    """The trigger's kind and what it watches, for the journey's page: "Confirmed on a list of
    the topic: “Product news”", "A date field comes round: 30 days before contract_end".  A list,
    form, segment or campaign deleted since reads "(deleted)"."""
    from tidings.audience.models import Segment, SignupForm
    from tidings.campaigns.models import Campaign

    kind, params = journey.get_trigger_display(), journey.trigger_params or {}

    def named(model: Any, key: str, attribute: str = "name") -> str:
        pk = params.get(key)
        if not is_id(pk):
            return "(deleted)"
        row = model.objects.filter(pk=pk).values_list(attribute, flat=True).first()
        return f"“{row}”" if row is not None else "(deleted)"

    trigger = journey.trigger
    if trigger == Journey.Trigger.CONFIRMED:
        if params.get("list") is None:
            return f"{kind}: any list of “{journey.topic}”"
        return f"{kind}: {named(MailingList, 'list')}"
    if trigger == Journey.Trigger.EVENT:
        return f"{kind}: “{params.get('name', '')}”"
    if trigger == Journey.Trigger.DATE:
        days, field = params.get("days", 0), params.get("field", "contract_end")
        days = days if isinstance(days, int) else 0
        when = (
            f"on the day of {field}"
            if days == 0
            else f"{abs(days)} day{'s' if abs(days) != 1 else ''} "
            f"{'before' if days < 0 else 'after'} {field}"
        )
        return f"{kind}: {when}{', every year' if params.get('yearly') else ''}"
    if trigger == Journey.Trigger.LINK:
        link = params.get("url") or "any link"
        return f"{kind}: {link} in {named(Campaign, 'campaign')}"
    if trigger == Journey.Trigger.FORM:
        return f"{kind}: {named(SignupForm, 'form')}"
    if trigger == Journey.Trigger.SEGMENT:
        return f"{kind}: {named(Segment, 'segment')}"
    return kind
