"""Every change to people, lists and consent goes through these named actions."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from tidings import signals
from tidings.lib.audit import audit
from tidings.lib.models import AuditEntry
from tidings.lib.ratelimit import count_attempt
from tidings.lib.system_mail import send_system_email
from tidings.lib.text import clean_line, one_line, strip_format_characters
from tidings.policy import get_policy

from .consent import (
    CAPTURED_FIELDS,
    CHANNEL_EMAIL,
    PURPOSE_MARKETING,
    PURPOSE_NEWSLETTER,
    PURPOSE_TRACKING,
    current_state,
    ledger_ip,
    tracking_allowed,
)
from .consent_records import (
    PERSON_LIFTABLE,
    lift_person_suppression,
    mail_stopped,
    record_consent,
    regrant_email_marketing,
    set_channels,
)
from .emails import InvalidEmail, email_hmac, normalise_email
from .forms import (
    TRACKING_LABEL,
    default_consent_wording,
    field_label,
    preference_channel_label,
)
from .models import (
    ConsentEvent,
    ConsentWording,
    Contact,
    MailingList,
    PendingPreferences,
    SignupForm,
    Subscription,
    Suppression,
)
from .signup_forms import (  # noqa: F401  (re-exported: the public door stays actions)
    SIGNUP_FORM_FIELDS,
    SignupFormInvalid,
    do_create_signup_form,
    do_update_signup_form,
)
from .sources import AnyOf
from .subscriptions import ACTIVE, ENDED, do_set_subscription_status
from .suppression import do_suppress, suppression_reason
from .tokens import (
    ConfirmRequest,
    UnsubscribeRequest,
    confirm_days,
    confirm_url,
    list_unsubscribe_headers,
    preferences_url,
    unsubscribe_url,
)


class FieldNotAllowed(ValueError):
    pass


class ConsentWithdrawnSince(ValueError):
    """A consent dated before the person's latest withdrawal cannot subscribe them again."""


def allowed_contact_fields(purpose: str) -> tuple[str, ...]:
    return get_policy().fields_for(purpose).all


# A person's own time zone (an IANA name, "Europe/Paris"), held as an attribute where the policy
# lets a purpose collect it: journeys may wait until a time of day in it (journeys/schedule.py).
TIME_ZONE_FIELD = "time_zone"


def parse_time_zone(value: Any) -> ZoneInfo | None:
    """The zone an IANA name stands for; None for anything else (zoneinfo knows the names)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        return None
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def check_fields(values: Mapping[str, Any], purpose: str) -> None:
    """Refuse any field the purpose may not collect, any missing required one, and a time
    zone that is not one."""
    fields = get_policy().fields_for(purpose)
    unknown = sorted(set(values) - set(fields.all))
    if unknown:
        raise FieldNotAllowed(f"the {purpose} purpose may not collect: {', '.join(unknown)}")
    zone = values.get(TIME_ZONE_FIELD)
    if zone not in (None, "") and parse_time_zone(zone) is None:
        raise FieldNotAllowed(f'{TIME_ZONE_FIELD}: expected a time zone such as "Europe/Paris"')
    missing = [
        f
        for f in fields.required
        if not str(values.get(f) or "").strip() and f not in CAPTURED_FIELDS
    ]
    if missing:
        raise FieldNotAllowed(f"missing required field(s): {', '.join(missing)}")


def wording(text: str) -> ConsentWording:
    """The stored copy of a consent wording (created once, shared by every event that used it)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    obj, _ = ConsentWording.objects.get_or_create(sha256=digest, defaults={"text": text})
    return obj


def _on_commit_send(signal: Any, **kwargs: Any) -> None:
    """Fire a domain signal (tidings.signals) once the transaction has committed."""
    transaction.on_commit(lambda: signal.send(sender=Subscription, **kwargs))


def announce_unsubscribed(contact_ids: Iterable[int], list_id: int) -> None:
    """Once the transaction has committed, say that these people left the list:
    ``contacts_unsubscribed`` once (journeys exit them in a few queries, webhooks queue one
    ``contact.unsubscribed`` each), then ``contact_unsubscribed`` for each person.  The person's
    own unsubscribe and an operator's removal both call it, so both have the same effects."""
    ids = tuple(contact_ids)
    if not ids:
        return

    def send() -> None:
        signals.contacts_unsubscribed.send(sender=Subscription, contact_ids=ids, list_id=list_id)
        for contact_id in ids:
            signals.contact_unsubscribed.send(
                sender=Subscription, contact_id=contact_id, list_id=list_id
            )

    transaction.on_commit(send)


@transaction.atomic
def do_create_contact(values: Mapping[str, Any], *, purpose: str) -> tuple[Contact, bool]:
    """Create the contact for these values, or return the existing one with the same address.

    Only fields the purpose collects are accepted; an existing contact's blank fields are filled
    in, but what it already holds is not overwritten by an anonymous submission.  Invisible
    format characters (bidi overrides...) are taken out of every value first
    (``lib.text.clean_line``): a name made of nothing else is missing.  A line break or tab in
    a one-line column (a name, a company) becomes a space (``lib.text.one_line``).
    """
    data: dict[str, Any] = {
        name: one_line(clean_line(value)) if name in Contact.ONE_LINE_FIELDS else clean_line(value)
        for name, value in values.items()
    }
    check_fields(data, purpose)
    data["email"] = normalise_email(data["email"])
    columns = {k: v for k, v in data.items() if k in Contact.COLUMN_FIELDS}
    attributes = {k: v for k, v in data.items() if k not in Contact.COLUMN_FIELDS}
    contact = Contact.objects.with_email(data["email"]).first()
    if contact is None:
        try:
            with transaction.atomic():
                return Contact.objects.create(**columns, attributes=attributes), True
        except IntegrityError:
            # The same address was stored a moment ago by another request (two web processes
            # on PostgreSQL): the unique index made this insert wait for it, so it is visible
            # now.  It is the existing contact, as if it had been there first.
            contact = Contact.objects.with_email(data["email"]).get()
    changed = [k for k, v in columns.items() if v and not getattr(contact, k)]
    for key in changed:
        setattr(contact, key, columns[key])
    new_attrs = {k: v for k, v in attributes.items() if k not in contact.attributes}
    if new_attrs:
        contact.attributes = {**contact.attributes, **new_attrs}
        changed.append("attributes")
    if changed:
        contact.save(update_fields=[*changed, "updated_at"])
    return contact, False


def lock_person(contact_id: int) -> Contact | None:
    """Lock the person's row before changing their subscriptions or consent (None: gone).

    Every action that does takes this lock first, so two for one person (a confirmation and an
    unsubscribe posted at the same moment) run one after the other.  Without it each locked its
    own rows in its own order, and on PostgreSQL the consent event's foreign-key check, which
    takes a share lock on the contact at commit, closed a deadlock with the other.  ``no_key``:
    FOR NO KEY UPDATE, which those foreign-key checks pass (FOR UPDATE would block them).
    """
    return Contact.objects.select_for_update(no_key=True).filter(pk=contact_id).first()


def _withdrawn_after(contact: Contact, mailing_list: MailingList, at: datetime) -> bool:
    return ConsentEvent.objects.filter(
        models.Q(purpose=PURPOSE_NEWSLETTER, mailing_list=mailing_list)
        | models.Q(purpose=PURPOSE_MARKETING, mailing_list=None),
        contact=contact,
        channel=CHANNEL_EMAIL,
        action=ConsentEvent.Action.WITHDRAWN,
        at__gt=at,
    ).exists()


@transaction.atomic
def do_subscribe(
    contact: Contact,
    mailing_list: MailingList,
    *,
    source: str,
    source_ref: str = "",
    wording_text: str,
    confirmed: bool,
    ip_address: str | None = None,
    at: datetime | None = None,
) -> Subscription:
    """Subscribe a contact to a list and record the consent that allows it.

    ``at``: when the consent was given, if not now (an API client's proof of consent).  A
    withdrawal from this list (or from email marketing) after ``at`` means that consent was
    taken back: ConsentWithdrawnSince, and nothing is written (the ledger, replayed by time,
    would go on saying "withdrawn" while the subscription said "confirmed")."""
    lock_person(contact.pk)
    if at is not None and _withdrawn_after(contact, mailing_list, at):
        raise ConsentWithdrawnSince(
            "the person withdrew consent to this list after the time given for this consent"
        )
    now = timezone.now()
    status = Subscription.Status.CONFIRMED if confirmed else Subscription.Status.PENDING
    sub, created = Subscription.objects.get_or_create(
        contact=contact,
        mailing_list=mailing_list,
        defaults={"status": status, "confirmed_at": now if confirmed else None},
    )
    newly_confirmed = confirmed and (created or sub.status != Subscription.Status.CONFIRMED)
    if not created and sub.status != Subscription.Status.CONFIRMED:
        sub.status = status
        sub.confirmed_at = now if confirmed else None
        sub.unsubscribed_at = None
        sub.save(update_fields=["status", "confirmed_at", "unsubscribed_at", "updated_at"])
    if newly_confirmed:
        _on_commit_send(signals.contact_subscribed, contact_id=contact.pk, list_id=mailing_list.pk)
    ConsentEvent.objects.create(
        contact=contact,
        purpose="newsletter",
        channel="email",
        mailing_list=mailing_list,
        topic=mailing_list.topic,
        action=ConsentEvent.Action.GRANTED,
        at=at or now,
        source=source,
        source_ref=source_ref,
        wording=wording(wording_text),
        ip_address=ip_address,
    )
    return sub


# ==============================================================================================
# Sign-up forms, double opt-in, the preference centre and unsubscribing.
#
# The public pages call these; each is one transaction that writes its consent events and audit
# entries, and sends its email only once the transaction has committed.  Two rules run through
# them:
# - A sign-up never tells the visitor anything about the address: new, pending, confirmed or
#   suppressed, the caller gets None and shows the same page.
# - Nothing an anonymous form submits changes an existing person's record.  Anything that would
#   (joining lists as an existing contact, reversing an unsubscribe) waits for the click in the
#   confirmation email, which proves the mailbox is theirs.
# ==============================================================================================
logger = logging.getLogger(__name__)


def pending_days() -> int:
    """How long a never-confirmed sign-up is kept (settings.TIDINGS_PENDING_DAYS, default 7)."""
    return int(getattr(settings, "TIDINGS_PENDING_DAYS", 7))


# --- emails -----------------------------------------------------------------------------------
# Confirmations one address may be sent per period.  The per-IP limit on the form stops one
# machine; this stops many machines from using our form to flood one person's inbox.
CONFIRMATIONS_PER_ADDRESS = (3, 3600)


def _confirmation_allowed(contact: Contact) -> bool:
    return count_attempt(
        "confirmation",
        str(contact.pk),
        "TIDINGS_CONFIRMATIONS_PER_ADDRESS",
        CONFIRMATIONS_PER_ADDRESS,
    )


# The same guard for the preference centre's "email me a link" page, which anyone can fill in.
PREFERENCE_LINKS_PER_ADDRESS = (3, 3600)


def _preferences_link_allowed(contact: Contact) -> bool:
    return count_attempt(
        "preferences-link",
        str(contact.pk),
        "TIDINGS_PREFERENCE_LINKS_PER_ADDRESS",
        PREFERENCE_LINKS_PER_ADDRESS,
    )


def _send_confirmation(
    contact: Contact,
    request: ConfirmRequest,
    lists: list[MailingList],
    *,
    changes: Iterable[str] = (),
) -> None:
    """``changes``: what else the click does, one line each (``pending_lines``)."""
    if not _confirmation_allowed(contact):
        logger.info("confirmation to contact %s not sent: too many recently", contact.pk)
        return
    _confirmation_email(contact, request, lists, changes=changes)


def _confirmation_email(
    contact: Contact,
    request: ConfirmRequest,
    lists: list[MailingList],
    *,
    changes: Iterable[str] = (),
) -> None:
    """Send the confirmation email (the caller has counted it: ``_confirmation_allowed``)."""
    # An address we already mail (a subscriber ticking another list, in the preference centre
    # or on a form) is not deleted if the link is ignored: the email must not say it is.
    subscriber = contact.subscriptions.filter(status=Subscription.Status.CONFIRMED).exists()
    send_system_email(
        contact,
        "confirmation",
        {
            "lists": [ml.name for ml in lists],
            "changes": list(changes),
            "confirm_url": confirm_url(request),
            "subscriber": subscriber,
        },
    )


def _send_welcome(contact: Contact, lists: list[MailingList]) -> None:
    # One list: its own unsubscribe link; several joined at once: a link that leaves them all.
    only = lists[0] if len(lists) == 1 else None
    send_system_email(
        contact,
        "welcome",
        {
            "lists": [ml.name for ml in lists],
            "preferences_url": preferences_url(contact),
            "unsubscribe_url": unsubscribe_url(contact, only),
        },
        headers=list_unsubscribe_headers(contact, only),
    )


# --- signing up -------------------------------------------------------------------------------
class SignupAnswer(StrEnum):
    """What a sign-up form's thank-you page may say.  Never whether the address is known: the
    answer depends only on how often the address was typed into our forms lately."""

    SENT = "sent"  # "we have sent an email" (to whoever the address may be)
    # Submitted several times in the last hour (``CONFIRMATIONS_PER_ADDRESS``): nothing is
    # done, and the page says an email went recently instead of "sent".
    RECENTLY = "recently"


def _signup_allowed(email: str) -> bool:
    """Count one submission of ``email`` on a sign-up form: every valid one, whether the
    address is new, known or suppressed, so that the answer tells nobody which it is.  (The
    confirmation emails themselves are counted by contact, with the preference page's:
    ``_confirmation_allowed``.)  Keyed by the address's HMAC: no address in the cache."""
    return count_attempt(
        "signup-address",
        email_hmac(email),
        "TIDINGS_CONFIRMATIONS_PER_ADDRESS",
        CONFIRMATIONS_PER_ADDRESS,
    )


@transaction.atomic
def do_sign_up(
    signup_form: SignupForm,
    values: Mapping[str, Any],
    *,
    list_ids: Iterable[int],
    channels: Iterable[str] = (),
    wording_text: str,
    ip: str | None = None,
) -> SignupAnswer:
    """Handle one submission of a sign-up form (already validated by its Django form).

    The answer never depends on the address being known (the page must be the same whatever
    happened): RECENTLY when the address was submitted on our forms more than
    ``TIDINGS_CONFIRMATIONS_PER_ADDRESS`` allows (3 an hour) — then nothing is done —, else
    SENT.  What happens:
    - the address (or its domain) is suppressed for any reason but "unsubscribed": nothing;
    - a new address: the contact, pending subscriptions and the form's consent events are stored
      and a confirmation email is sent (with double opt-in off, and no earlier unsubscribe, the
      subscriptions are confirmed at once and a welcome email is sent instead);
    - an existing contact, or an address that unsubscribed from everything before: nothing is
      stored; a confirmation email is sent, and the click does the rest.
    ``wording_text`` is the consent wording the form showed; ``ip`` is kept only if the policy
    allows it.
    """
    policy = get_policy()
    email = normalise_email(values["email"])
    if not _signup_allowed(email):
        logger.info("sign-up on form %s ignored: the address was submitted often", signup_form.pk)
        return SignupAnswer.RECENTLY
    suppressed = suppression_reason(email)
    if suppressed not in (None, *PERSON_LIFTABLE):
        logger.info("sign-up on form %s ignored: the address is suppressed", signup_form.pk)
        return SignupAnswer.SENT
    lists = list(
        signup_form.lists.filter(
            pk__in=list(list_ids), closed_at__isnull=True, topic__in=policy.marketing.topics
        ).order_by("name")
    )
    if not lists:
        return SignupAnswer.SENT
    chosen_channels = [c for c in channels if c in (signup_form.channels or ())]
    wording_obj = wording(wording_text)
    source_ref = f"form:{signup_form.pk}"

    contact = Contact.objects.with_email(email).first()
    is_new = contact is None
    if contact is None:  # (another request may store it first: do_create_contact finds it)
        fields = {k: v for k, v in values.items() if k in allowed_contact_fields("newsletter")}
        contact, is_new = do_create_contact({**fields, "email": email}, purpose="newsletter")

    request = ConfirmRequest(
        contact_id=contact.pk,
        list_ids=tuple(ml.pk for ml in lists),
        form_id=signup_form.pk,
        wording_id=wording_obj.pk,
        channels=tuple(chosen_channels),
    )
    # The channels ticked are confirmed by the same click: the email says so (the person must
    # see everything the link does), in the words of the preference page's boxes.
    channel_lines = [preference_channel_label(c) for c in chosen_channels]
    if not is_new:
        _send_confirmation(contact, request, lists, changes=channel_lines)
        return SignupAnswer.SENT

    direct = not policy.purpose("newsletter").double_opt_in and suppressed is None
    for ml in lists:
        do_subscribe(
            contact,
            ml,
            source=ConsentEvent.Source.FORM,
            source_ref=source_ref,
            wording_text=wording_text,
            confirmed=direct,
            ip_address=ledger_ip(ip),
        )
    audit(
        "signup.received",
        obj=contact,
        form=signup_form.pk,
        lists=[ml.pk for ml in lists],
        confirmed=direct,
    )
    if direct:
        set_channels(
            contact,
            dict.fromkeys(chosen_channels, True),
            source=ConsentEvent.Source.FORM,
            source_ref=source_ref,
            wording_obj=wording_obj,
            ip=ip,
        )
        _send_welcome(contact, lists)
        _form_submitted(contact.pk, signup_form.pk)
    else:
        _send_confirmation(contact, request, lists, changes=channel_lines)
    return SignupAnswer.SENT


@dataclass(frozen=True)
class ConfirmResult:
    contact: Contact | None  # None: the contact no longer exists
    confirmed: list[MailingList] = field(default_factory=list)  # confirmed by this click
    already: list[MailingList] = field(default_factory=list)  # confirmed before
    refused: bool = False  # the address has been suppressed since (bounce, complaint...)
    # What else this click did: the channels a sign-up form's link grants ("phone granted"),
    # the preference page's other changes.
    changed: list[str] = field(default_factory=list)


@transaction.atomic
def do_confirm_signup(request: ConfirmRequest, *, ip: str | None = None) -> ConfirmResult:
    """The person clicked the button behind their confirmation link: subscribe them for real."""
    contact = lock_person(request.contact_id)
    if contact is None:
        return ConfirmResult(None)
    suppressed = suppression_reason(contact.email)
    if suppressed not in (None, *PERSON_LIFTABLE):
        return ConfirmResult(contact, refused=True)
    lists = list(
        MailingList.objects.filter(
            pk__in=request.list_ids,
            closed_at__isnull=True,
            topic__in=get_policy().marketing.topics,  # a topic taken out of the policy: no more
        ).order_by("name")
    )
    wording_obj = (
        ConsentWording.objects.filter(pk=request.wording_id).first() if request.wording_id else None
    )
    wording_text = wording_obj.text if wording_obj else default_consent_wording(get_policy(), lists)
    source_ref = f"form:{request.form_id}" if request.form_id else ""
    statuses = dict(
        contact.subscriptions.filter(mailing_list__in=lists).values_list(
            "mailing_list_id", "status"
        )
    )
    confirmed, already = [], []
    for ml in lists:
        if statuses.get(ml.pk) == Subscription.Status.CONFIRMED:
            already.append(ml)
            continue
        do_subscribe(
            contact,
            ml,
            source=ConsentEvent.Source.CONFIRMATION,
            source_ref=source_ref,
            wording_text=wording_text,
            confirmed=True,
            ip_address=ledger_ip(ip),
        )
        confirmed.append(ml)
    event_kwargs: dict[str, Any] = {
        "source": ConsentEvent.Source.CONFIRMATION,
        "source_ref": source_ref,
        "wording_obj": wording_obj,
        "ip": ip,
    }
    if confirmed:
        regrant_email_marketing(contact, **event_kwargs)
    granted = set_channels(contact, dict.fromkeys(request.channels, True), **event_kwargs)
    applied = _apply_pending(contact, request.pending_id, **event_kwargs)
    if suppressed in PERSON_LIFTABLE and (confirmed or already):
        lift_person_suppression(contact.email)
    if confirmed:
        audit("signup.confirmed", obj=contact, lists=[ml.pk for ml in confirmed])
        _send_welcome(contact, confirmed)
        if request.form_id:
            _form_submitted(contact.pk, request.form_id)
    return ConfirmResult(contact, confirmed, already, changed=granted + applied)


def _apply_pending(contact: Contact, pending_id: int | None, **event_kwargs: Any) -> list[str]:
    """Make the preference page's changes this click confirms (``PendingPreferences``): grant
    the channels and statistics (the click is the proof: source "confirmation", the page's
    wording) and set the new details.  None when a later save replaced them, or they are done.
    Returns what changed."""
    if pending_id is None:
        return []
    pending = PendingPreferences.objects.filter(pk=pending_id, contact=contact).first()
    if pending is None:
        return []
    event_kwargs["wording_obj"] = pending.wording
    changed = set_channels(contact, dict.fromkeys(pending.channels, True), **event_kwargs)
    if pending.tracking and not tracking_allowed(contact):
        record_consent(
            contact,
            purpose=PURPOSE_TRACKING,
            channel=CHANNEL_EMAIL,
            action=ConsentEvent.Action.GRANTED,
            **event_kwargs,
        )
        changed.append(f"tracking {ConsentEvent.Action.GRANTED}")
    fields = _update_contact_fields(contact, pending.values)
    if fields:
        audit("contact.updated", obj=contact, fields=fields, source=event_kwargs["source"])
    pending.delete()
    changed += [f"{name} updated" for name in fields]
    # Written even when nothing needed changing: this entry is how the link, pressed again,
    # knows its changes were made (``pending_confirmed``), not replaced or taken back.
    audit("preferences.confirmed", obj=contact, pending=pending_id, changes=changed)
    return changed


def pending_confirmed(contact_id: int, pending_id: int | None) -> bool:
    """Were the preference-page changes ``pending_id`` made by a click on their link?  (Once
    made, they are deleted, as they are when a later save replaces them or the person leaves
    everything: the audit entry the click wrote tells these apart.)"""
    if pending_id is None:
        return False
    return AuditEntry.objects.filter(
        action="preferences.confirmed",
        object_type=Contact._meta.label_lower,
        object_id=str(contact_id),
        details__pending=pending_id,
    ).exists()


def _form_submitted(contact_id: int, form_id: int) -> None:
    """A sign-up form's submission took effect: at once without double opt-in, else when the
    address's owner confirmed it (before that, anyone could have typed the address)."""
    transaction.on_commit(
        lambda: signals.form_submitted.send(
            sender=SignupForm, contact_id=contact_id, form_id=form_id
        )
    )


# --- unsubscribing ----------------------------------------------------------------------------
_ACTIVE = ACTIVE


@transaction.atomic
def do_unsubscribe(
    contact: Contact,
    mailing_list: MailingList,
    *,
    source: str,
    source_ref: str = "",
    ip: str | None = None,
) -> bool:
    """Unsubscribe from one list, at once.  False when there was nothing to unsubscribe."""
    lock_person(contact.pk)
    sub = (
        Subscription.objects.select_for_update()
        .filter(contact=contact, mailing_list=mailing_list, status__in=_ACTIVE)
        .first()
    )
    if sub is None:
        return False
    do_set_subscription_status([sub], Subscription.Status.UNSUBSCRIBED)
    record_consent(
        contact,
        purpose=PURPOSE_NEWSLETTER,
        channel=CHANNEL_EMAIL,
        mailing_list=mailing_list,
        action=ConsentEvent.Action.WITHDRAWN,
        source=source,
        source_ref=source_ref,
        ip=ip,
    )
    audit("subscription.unsubscribed", obj=sub, list=mailing_list.pk, source=source)
    announce_unsubscribed([contact.pk], mailing_list.pk)
    _count_campaign_unsubscribe(source_ref, contact)
    return True


@transaction.atomic
def do_end_subscriptions_by_import(
    contact_ids: Iterable[int],
    mailing_list: MailingList,
    *,
    source_ref: str,
    status: str = Subscription.Status.UNSUBSCRIBED,
) -> list[int]:
    """End these people's live subscriptions to ``mailing_list`` because an import says they
    left the earlier tool (``imports.lanes``), with the ``status`` that says how they left:
    ``unsubscribed`` (they withdrew), ``complained`` (they marked mail as spam) or ``bounced``
    (the earlier tool cleaned the address: the mailbox refused mail).

    A withdrawal (unsubscribed, complained) is written to the ledger for each (source import,
    ``source_ref`` "import:<id>"), as an unsubscribe link or a complaint would write it.  A
    bounce is the mailbox's doing, not the person's: like a hard bounce here
    (``suppression.do_record_hard_bounce``) it ends the subscription without a withdrawal the
    person never made, so their consent history does not say they unsubscribed.  Either way,
    once committed, the effects of leaving the list follow for the whole batch at once
    (``announce_unsubscribed``: journeys exit them, ``contact.unsubscribed`` webhooks).  A few
    statements per batch, not per person (an import's batches hold thousands of rows).
    Returns whose subscription ended."""
    if status not in ENDED:
        raise ValueError(f"not an end of a subscription: {status!r}")
    ids = sorted(set(contact_ids))
    if not ids:
        return []
    # The people's rows first, in id order: what ``lock_person`` does for one person, so an
    # unsubscribe or confirmation of one of them runs before or after, never interleaved.
    list(
        Contact.objects.select_for_update(no_key=True)
        .filter(AnyOf("pk", ids))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    subs = list(
        Subscription.objects.select_for_update()
        .filter(mailing_list=mailing_list, status__in=ACTIVE)
        .filter(AnyOf("contact_id", ids))
        .order_by("pk")
    )
    if not subs:
        return []
    now = timezone.now()
    do_set_subscription_status(subs, status, at=now)
    if status != Subscription.Status.BOUNCED:
        ConsentEvent.objects.bulk_create(
            [
                ConsentEvent(
                    contact_id=s.contact_id,
                    purpose=PURPOSE_NEWSLETTER,
                    channel=CHANNEL_EMAIL,
                    mailing_list=mailing_list,
                    topic=mailing_list.topic,
                    action=ConsentEvent.Action.WITHDRAWN,
                    at=now,
                    source=ConsentEvent.Source.IMPORT,
                    source_ref=source_ref,
                )
                for s in subs
            ]
        )
    ended = sorted(s.contact_id for s in subs)
    audit(
        "list.contacts_left_by_import",
        actor_label="import",
        obj=mailing_list,
        count=len(ended),
        status=str(status),
        source_ref=source_ref,
    )
    announce_unsubscribed(ended, mailing_list.pk)
    return ended


def _count_campaign_unsubscribe(source_ref: str, contact: Contact) -> None:
    """An unsubscribe from a campaign's link counts in that campaign's report, in this
    transaction (the campaigns app listens: ``signals.unsubscribe_recorded``)."""
    if source_ref:
        signals.unsubscribe_recorded.send(Contact, contact_id=contact.pk, source_ref=source_ref)


@transaction.atomic
def do_unsubscribe_request(
    unsubscribe_request: UnsubscribeRequest, *, source: str, ip: str | None = None
) -> None:
    """What an unsubscribe link (``tokens.unsubscribe_url``) asks for, however it arrived: the
    RFC 8058 one-click POST, the page's button, or a mail to the List-Unsubscribe mailto with
    the token in its subject.  From its list, or from everything; nothing to do when the contact
    (erased since) or the list (deleted) is gone: nothing can be sent."""
    contact = lock_person(unsubscribe_request.contact_id)
    if contact is None:
        return
    source_ref = (
        f"delivery:{unsubscribe_request.delivery_id}" if unsubscribe_request.delivery_id else ""
    )
    if unsubscribe_request.list_id is None:
        do_unsubscribe_all(contact, source=source, source_ref=source_ref, ip=ip)
        return
    mailing_list = MailingList.objects.filter(pk=unsubscribe_request.list_id).first()
    if mailing_list is not None:
        do_unsubscribe(contact, mailing_list, source=source, source_ref=source_ref, ip=ip)


@transaction.atomic
def do_unsubscribe_all(
    contact: Contact,
    *,
    source: str,
    source_ref: str = "",
    ip: str | None = None,
    other_channels: bool = False,
) -> int:
    """Unsubscribe from every list, withdraw email marketing consent, and suppress the address
    (reason "unsubscribed": a later sign-up must be confirmed by email).  With
    ``other_channels``, phone/post consent is withdrawn too.  What waited for a confirmation
    from the preference page goes.  Returns how many lists were left; repeating it changes
    nothing.
    """
    lock_person(contact.pk)
    subs = list(
        Subscription.objects.select_for_update()
        .filter(contact=contact, status__in=_ACTIVE)
        .select_related("mailing_list")
    )
    left = sum(
        do_unsubscribe(contact, sub.mailing_list, source=source, source_ref=source_ref, ip=ip)
        for sub in subs
    )
    standing = current_state(contact).standing(PURPOSE_MARKETING, CHANNEL_EMAIL)
    if standing is None or standing.granted:
        record_consent(
            contact,
            purpose=PURPOSE_MARKETING,
            channel=CHANNEL_EMAIL,
            action=ConsentEvent.Action.WITHDRAWN,
            source=source,
            source_ref=source_ref,
            ip=ip,
        )
    if other_channels:
        channels = [c for c in get_policy().marketing.channels if c != CHANNEL_EMAIL]
        set_channels(
            contact, dict.fromkeys(channels, False), source=source, source_ref=source_ref, ip=ip
        )
    do_suppress(contact.email, Suppression.Reason.UNSUBSCRIBED, actor_label=source)
    # Leaving everything takes back what waited for a confirmation email (a telephone or
    # statistics grant, new details): a click on that older email must not grant it afterwards.
    PendingPreferences.objects.filter(contact=contact).delete()
    _count_campaign_unsubscribe(source_ref, contact)
    if left:
        audit("subscription.unsubscribed_all", obj=contact, lists=left, source=source)
    return left


# --- the preference centre --------------------------------------------------------------------
@dataclass(frozen=True)
class PreferenceChoices:
    """What the person ticked and typed on their preference page."""

    list_ids: frozenset[int]
    channels: frozenset[str]
    tracking: bool | None  # None: the page did not offer it
    values: Mapping[str, str]


# How do_update_preferences says a list was not joined because mail to the address is stopped.
LIST_REFUSED = "refused: mail stopped"
# ... that a change made there waits for the click in the confirmation email ...
LIST_TO_CONFIRM = "to confirm"
# ... and that it was already waiting for it (no second email) ...
STILL_TO_CONFIRM = "already waiting"
# ... or that it was not asked for: no email went, several were sent to the address recently.
HELD_BACK = "not asked: too many emails recently"


@transaction.atomic
def do_update_preferences(
    contact: Contact,
    choices: PreferenceChoices,
    *,
    offered_lists: Iterable[MailingList],
    offered_channels: Iterable[str],
    wording_text: str,
    ip: str | None = None,
) -> list[str]:
    """Apply a saved preference page.  Only what changed is written (subscriptions, one consent
    event per change, contact fields).  Returns a short description of each change.

    Withdrawing takes effect at once: leaving a list, refusing a channel or tracking.  Granting
    and changing the person's details do not: the preference link sits in every email we send,
    for a year, and emails get forwarded, so whoever opens the page need not be the person.
    The lists ticked are sent to the address as a confirmation link (``do_confirm_signup``, as
    a sign-up form's are), the channels and statistics granted and the new name or company
    wait in ``PendingPreferences`` for the same click, and only that click in the mailbox
    subscribes, grants (the ledger's proof: source "confirmation", with this page's wording),
    changes the details and lifts an "unsubscribed everything" suppression ("... to confirm"
    in the result).  An address whose mail is stopped for a reason the person cannot lift gets
    no email, so none of it happens ("... refused: mail stopped").  The page shows what waits
    as chosen, so what a save asks for is what the person wants now: exactly what already
    waits sends no second email ("... already waiting"), something else replaces it (the
    earlier email's link then joins its lists only), nothing takes it back.  When several
    confirmation emails went to the address in the last hour (``_confirmation_allowed``), no
    email is sent and what waits stays as it was ("... not asked: too many emails recently").
    """
    source = ConsentEvent.Source.PREFERENCES
    contact = Contact.objects.select_for_update(no_key=True).get(pk=contact.pk)  # lock_person
    changes: list[str] = []
    wording_obj = wording(wording_text)
    statuses = dict(contact.subscriptions.values_list("mailing_list_id", "status"))
    # As at sign-up and confirmation: an address stopped for a reason the person may not lift
    # (a hard bounce, a complaint, an operator's entry) joins no list here either; the page
    # says so (``mail_stopped``) instead of "saved".
    stopped = mail_stopped(contact.email)
    to_join = []
    for ml in offered_lists:
        status = statuses.get(ml.pk)
        if ml.pk in choices.list_ids and status != Subscription.Status.CONFIRMED:
            to_join.append(ml)
        elif ml.pk not in choices.list_ids and status == Subscription.Status.CONFIRMED:
            do_unsubscribe(contact, ml, source=source, ip=ip)
            changes.append(f"list {ml.pk} left")
    state = current_state(contact)
    offered = list(offered_channels)
    grant_channels = [c for c in offered if c in choices.channels and not state.channel_granted(c)]
    changes += set_channels(
        contact,
        {c: False for c in offered if c not in choices.channels},
        source=source,
        ip=ip,
    )
    grant_tracking = False
    if choices.tracking is not None and choices.tracking != tracking_allowed(contact):
        if choices.tracking:
            grant_tracking = True
        else:
            record_consent(
                contact,
                purpose=PURPOSE_TRACKING,
                channel=CHANNEL_EMAIL,
                action=ConsentEvent.Action.WITHDRAWN,
                source=source,
                ip=ip,
            )
            changes.append(f"tracking {ConsentEvent.Action.WITHDRAWN}")
    new_values = _field_changes(contact, choices.values)
    asked = [f"list {ml.pk}" for ml in to_join] + [f"channel {c}" for c in grant_channels]
    asked += ["tracking"] * grant_tracking + [f"{name}" for name in new_values]
    if not asked:
        # The page shows what waits as ticked (and typed): a save without it takes it back.
        if PendingPreferences.objects.filter(contact=contact).delete()[0]:
            changes.append("waiting changes withdrawn")
    elif stopped:
        changes += [f"{what} {LIST_REFUSED}" for what in asked]
    else:
        wanted = {
            "list_ids": sorted(ml.pk for ml in to_join),
            "channels": sorted(grant_channels),
            "tracking": grant_tracking,
            "values": new_values,
        }
        waiting = pending_preferences(contact)
        if waiting is not None and _pending_content(waiting) == wanted:
            changes += [f"{what} {STILL_TO_CONFIRM}" for what in asked]
        elif not _confirmation_allowed(contact):
            # No email may go: what waits stays as it is, so the link in the email sent
            # before still does what that email said (replacing it would leave changes that
            # no email's link can make), and the page says so.
            logger.info("confirmation to contact %s not sent: too many recently", contact.pk)
            changes += [f"{what} {HELD_BACK}" for what in asked]
        else:
            PendingPreferences.objects.filter(contact=contact).delete()
            pending = PendingPreferences.objects.create(
                contact=contact, wording=wording_obj, **wanted
            )
            confirm = ConfirmRequest(
                contact_id=contact.pk,
                list_ids=tuple(ml.pk for ml in to_join),
                wording_id=wording_obj.pk,
                pending_id=pending.pk,
            )
            _confirmation_email(contact, confirm, to_join, changes=pending_lines(pending))
            changes += [f"{what} {LIST_TO_CONFIRM}" for what in asked]
    if any(not change.endswith((STILL_TO_CONFIRM, HELD_BACK)) for change in changes):
        audit("preferences.updated", obj=contact, changes=changes)
    return changes


def _pending_content(pending: PendingPreferences) -> dict[str, Any]:
    return {
        "list_ids": sorted(pending.list_ids),
        "channels": sorted(pending.channels),
        "tracking": pending.tracking,
        "values": dict(pending.values),
    }


def pending_preferences(contact: Contact) -> PendingPreferences | None:
    """The preference-page changes waiting for the click in the person's mailbox, if any (and
    if that email's link still works)."""
    since = timezone.now() - timedelta(days=confirm_days())
    return PendingPreferences.objects.filter(contact=contact, created_at__gte=since).first()


def pending_lines(pending: PendingPreferences | None) -> list[str]:
    """What ``pending`` changes besides joining lists, one plain line each, in the words of the
    preference page (the confirmation email, the page with its button, the preference page)."""
    if pending is None:
        return []
    lines = [preference_channel_label(c) for c in pending.channels]
    if pending.tracking:
        lines.append(TRACKING_LABEL)
    lines += [f"{field_label(name)}: {value or '(none)'}" for name, value in pending.values.items()]
    return lines


def _field_changes(contact: Contact, values: Mapping[str, str]) -> dict[str, str]:
    """The newsletter purpose's fields the person edited, and their new values; nothing the
    policy does not allow for it (and never the address, which identifies them)."""
    fields = get_policy().fields_for("newsletter")
    allowed = set(fields.all) - CAPTURED_FIELDS - {"email"}
    changed: dict[str, str] = {}
    for name, raw in values.items():
        if name not in allowed:
            continue
        value = strip_format_characters(raw or "").strip()
        if not value and name in fields.required:
            continue  # a required field cannot be emptied
        if name == TIME_ZONE_FIELD and value and parse_time_zone(value) is None:
            continue  # not a time zone: what they had stays
        if name in Contact.COLUMN_FIELDS:
            current = getattr(contact, name)
        else:
            current = contact.attributes.get(name, "")
        if current != value:
            changed[name] = value
    return changed


def _update_contact_fields(contact: Contact, values: Mapping[str, str]) -> list[str]:
    """Set the fields ``_field_changes`` finds changed (again, at the click: what is allowed
    may have changed since)."""
    changed = _field_changes(contact, values)
    if not changed:
        return []
    attributes = dict(contact.attributes)
    for name, value in changed.items():
        if name in Contact.COLUMN_FIELDS:
            setattr(contact, name, value)
        elif value:
            attributes[name] = value
        else:
            attributes.pop(name, None)
    contact.attributes = attributes
    columns = [n for n in changed if n in Contact.COLUMN_FIELDS]
    contact.save(update_fields=[*columns, "attributes", "updated_at"])
    return list(changed)


@transaction.atomic
def do_send_preferences_link(email: str) -> None:
    """Email a fresh preference-centre link to ``email`` if it is a contact's and may be mailed.
    Returns nothing, so the page cannot tell whether the address is known."""
    try:
        email = normalise_email(email)
    except InvalidEmail:
        return
    contact = Contact.objects.with_email(email).first()
    if contact is None:
        return
    if suppression_reason(contact.email) not in (None, Suppression.Reason.UNSUBSCRIBED):
        return
    if not _preferences_link_allowed(contact):
        logger.info("preference link to contact %s not sent: too many recently", contact.pk)
        return
    send_system_email(contact, "preferences_link", {"preferences_url": preferences_url(contact)})


# --- purging sign-ups nobody confirmed --------------------------------------------------------
@dataclass(frozen=True)
class PurgeResult:
    subscriptions: int
    contacts: int
    events: int


def _other_records(contact_ids: set[int]) -> set[int]:
    """Contacts that anything but their subscriptions and consent events points to (CRM records,
    rights requests... whatever apps are installed): those must be kept."""
    keep: set[int] = set()
    for rel in Contact._meta.related_objects:
        if rel.related_model in (Subscription, ConsentEvent):
            continue
        manager = rel.related_model._base_manager
        keep.update(
            manager.filter(**{f"{rel.field.name}__in": contact_ids}).values_list(
                rel.field.name, flat=True
            )
        )
    return keep


def _delete_ledger_of_unconfirmed(contact_ids: set[int]) -> int:
    """Delete the consent events of sign-ups that were never confirmed.

    The ledger is append-only, and this is one of only two deletions it allows (the other is
    erasure, in the rights app): a sign-up nobody confirmed proves nothing about the person whose
    address was typed in, and keeping it would keep that address.  Only contacts whose every event
    came from a sign-up form get here (see do_purge_unconfirmed), and the filter repeats it.
    ``models.QuerySet`` rather than ``ConsentEvent.objects``, whose queryset refuses deletion by
    design; tests/audience/test_consent_ledger.py allows this function, and nothing else, to do it.
    """
    deleted, _ = (
        models.QuerySet(ConsentEvent)
        .filter(contact_id__in=contact_ids, source=ConsentEvent.Source.FORM)
        .delete()
    )
    return deleted


@transaction.atomic
def do_purge_unconfirmed(older_than_days: int | None = None) -> PurgeResult:
    """Delete pending subscriptions older than ``older_than_days`` (default: TIDINGS_PENDING_DAYS),
    and the contacts that had nothing but those sign-ups, with their consent events; and
    preference-page changes waiting as long for their confirmation (``PendingPreferences``).

    A contact who has anything else (another subscription, consent from another source, a CRM
    record) is kept; its purged sign-ups get a "withdrawn" event (source "system"), so its ledger
    does not go on saying "granted".
    """
    days = pending_days() if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    # Preference-page changes nobody confirmed go too (their link expired before this).
    PendingPreferences.objects.filter(created_at__lt=cutoff).delete()
    lapsed = Subscription.objects.filter(status=Subscription.Status.PENDING, created_at__lt=cutoff)
    people = sorted(set(lapsed.values_list("contact_id", flat=True)))
    if not people:
        return PurgeResult(0, 0, 0)
    # The people first, then their sign-ups: the order every consent change locks in
    # (lock_person), so a confirmation clicked while the purge runs waits for it, or it for the
    # confirmation, instead of each holding what the other needs (a deadlock on PostgreSQL).
    # In id order, as two purges at once then queue rather than cross.
    list(
        Contact.objects.select_for_update(no_key=True)
        .filter(AnyOf("pk", people))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    stale = list(
        lapsed.select_for_update(of=("self",))
        .filter(AnyOf("contact_id", people))
        .select_related("mailing_list", "contact")
    )
    if not stale:
        return PurgeResult(0, 0, 0)
    Subscription.objects.filter(pk__in=[s.pk for s in stale]).delete()
    contact_ids = {s.contact_id for s in stale}
    with_more = set(
        Subscription.objects.filter(contact_id__in=contact_ids).values_list("contact_id", flat=True)
    )
    with_more |= set(
        ConsentEvent.objects.filter(contact_id__in=contact_ids)
        .exclude(source=ConsentEvent.Source.FORM)
        .values_list("contact_id", flat=True)
    )
    with_more |= _other_records(contact_ids - with_more)
    removable = contact_ids - with_more
    events = _delete_ledger_of_unconfirmed(removable)
    Contact.objects.filter(pk__in=removable).delete()
    for sub in stale:
        if sub.contact_id in removable:
            continue
        state = current_state(sub.contact)
        standing = state.standing(PURPOSE_NEWSLETTER, CHANNEL_EMAIL, sub.mailing_list_id)
        if standing is not None and standing.granted:
            record_consent(
                sub.contact,
                purpose=PURPOSE_NEWSLETTER,
                channel=CHANNEL_EMAIL,
                mailing_list=sub.mailing_list,
                action=ConsentEvent.Action.WITHDRAWN,
                source=ConsentEvent.Source.SYSTEM,
                source_ref="unconfirmed sign-up purged",
            )
    audit(
        "signup.purged",
        subscriptions=len(stale),
        contacts=len(removable),
        events=events,
        older_than_days=days,
    )
    return PurgeResult(len(stale), len(removable), events)


# The name the issue uses.
purge_unconfirmed = do_purge_unconfirmed
