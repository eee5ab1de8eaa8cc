"""Writing the consent ledger for the audience's actions: one event, the marketing channels, the
re-grant of email marketing when someone who had left joins again, and lifting a suppression the
person may lift themselves.  Called inside the actions' transactions (``actions``)."""

from __future__ import annotations

from typing import Any

from .consent import CHANNEL_EMAIL, PURPOSE_MARKETING, current_state, ledger_ip
from .emails import email_hmac
from .models import ConsentEvent, ConsentWording, Contact, MailingList, Suppression
from .suppression import do_remove_suppression, suppression_reason


def record_consent(
    contact: Contact,
    *,
    purpose: str,
    channel: str,
    action: str,
    source: str,
    source_ref: str = "",
    mailing_list: MailingList | None = None,
    wording_obj: ConsentWording | None = None,
    ip: str | None = None,
) -> ConsentEvent:
    return ConsentEvent.objects.create(
        contact=contact,
        purpose=purpose,
        channel=channel,
        mailing_list=mailing_list,
        topic=mailing_list.topic if mailing_list is not None else "",
        action=action,
        source=source,
        source_ref=source_ref,
        wording=wording_obj,
        ip_address=ledger_ip(ip),
    )


def set_channels(
    contact: Contact,
    wanted: dict[str, bool],
    *,
    source: str,
    source_ref: str = "",
    wording_obj: ConsentWording | None = None,
    ip: str | None = None,
) -> list[str]:
    """Record marketing-channel consent where it differs from the ledger's current state."""
    state = current_state(contact)
    changed = []
    for channel, granted in wanted.items():
        if state.channel_granted(channel) == granted:
            continue
        action = ConsentEvent.Action.GRANTED if granted else ConsentEvent.Action.WITHDRAWN
        record_consent(
            contact,
            purpose=PURPOSE_MARKETING,
            channel=channel,
            action=action,
            source=source,
            source_ref=source_ref,
            wording_obj=wording_obj if granted else None,
            ip=ip,
        )
        changed.append(f"{channel} {action}")
    return changed


def regrant_email_marketing(contact: Contact, **kwargs: Any) -> None:
    """Someone who had unsubscribed from everything joins a list again: email marketing as a whole
    is granted again (see consent.py)."""
    standing = current_state(contact).standing(PURPOSE_MARKETING, CHANNEL_EMAIL)
    if standing is not None and not standing.granted:
        record_consent(
            contact,
            purpose=PURPOSE_MARKETING,
            channel=CHANNEL_EMAIL,
            action=ConsentEvent.Action.GRANTED,
            **kwargs,
        )


# Suppressions a person lifts by confirming a new sign-up themselves: they left, or had their
# data erased, and now prove the mailbox is theirs and ask for mail again.  Bounces, complaints
# and an operator's entries stay.
PERSON_LIFTABLE = (Suppression.Reason.UNSUBSCRIBED, Suppression.Reason.ERASED)


def mail_stopped(email: str) -> bool:
    """Is mail to this address stopped for a reason the person may not lift themselves (a hard
    bounce, a complaint, an operator's entry or a suppressed domain)?"""
    return suppression_reason(email) not in (None, *PERSON_LIFTABLE)


def lift_person_suppression(email: str) -> None:
    """Remove an address's suppression if, and only if, its reason is one the person may lift
    (``PERSON_LIFTABLE``).  Other reasons stay."""
    entry = Suppression.objects.filter(
        email_hmac=email_hmac(email), reason__in=PERSON_LIFTABLE
    ).first()
    if entry is not None:
        do_remove_suppression(entry, actor=None, cause="re-subscribed")
