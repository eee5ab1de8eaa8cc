"""Conversations by email: what we send about an enquiry or a support request, and how a
reply finds its way back.

Everything goes through the delivery engine (``campaigns.queue.enqueue_message``: queued in
the caller's transaction, sent by the worker, retried, recorded) from the support address
(``TIDINGS_SUPPORT_ADDRESS``), with

- ``Reply-To``: the conversation's own address, the support address with a signed token after
  a plus (``support+e12.1f2e3d4c5b6a7980@example.com``, like VERP), so a reply names its
  conversation even when the mail program drops every header we set;
- ``Message-ID``: the engine's for the queued row (``<o123.mac@example.com>``, computed here so
  it can be stored), and ``In-Reply-To``/``References`` naming the conversation's earlier mail,
  so the person's mail program threads it and their reply's In-Reply-To leads back here.

The token is an HMAC of the record (``salted_hmac`` with SECRET_KEY, the fallbacks accepted):
nobody can make one that opens someone else's conversation.

The subject of everything we send ends with the conversation's tag, its reference and a short
HMAC of its own (``Re: Courses [#E-12-4f7c2a9b1e]``), as help desks do: a reply that lost every
header (sent from another mail program, forwarded back to us, the reply address typed anew)
still names its conversation.  It joins it only when it comes from the conversation's person
(``processing._thread``); from anyone else it opens a conversation of its own, as mail that
names none does.  The tag cannot be guessed from the reference, so knowing "E-12" is not enough
to write into someone's conversation.
"""

from __future__ import annotations

import hmac
import re
from datetime import timedelta
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.crypto import salted_hmac

from tidings.campaigns.mail import render_system_email
from tidings.lib.audit import audit
from tidings.policy import get_policy
from tidings.policy.screening import find_sensitive, load_engine

from . import emails
from .actions import CrmError, kept_as_written
from .models import ConversationMessage, Enquiry, SupportRequest

Thread = Enquiry | SupportRequest
_TOKEN = re.compile(r"\+([er])(\d{1,18})\.([0-9a-f]{16})@", re.IGNORECASE)
# "[#E-12-4f7c2a9b1e]": the reference and 40 bits of an HMAC (another salt than the reply
# address's); any number of spaces before it goes with it when a subject is untagged.
_SUBJECT_TAG = re.compile(r"\s*\[#([ER])-(\d{1,18})-([0-9a-f]{10})\]", re.IGNORECASE)
_SUBJECT_SALT = "tidings.crm.subject-tag"


class NotConfigured(CrmError):
    pass


class ReplyRefused(CrmError):
    """The reply holds special-category data: we neither send nor keep it."""


# --- addresses --------------------------------------------------------------------------------
def support_address() -> str:
    """The support address as a From header ("Example Software Ltd <support@...>"), or ""."""
    configured = str(getattr(settings, "TIDINGS_SUPPORT_ADDRESS", "") or "").strip()
    if not configured:
        return ""
    name, address = parseaddr(configured)
    return configured if name else formataddr((get_policy().controller.name, address))


def sender_address() -> str:
    """Who our CRM mail is from: the support address, else the installation's From."""
    configured = support_address()
    if configured:
        return configured
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return (
        settings.DEFAULT_FROM_EMAIL if name else formataddr((get_policy().controller.name, address))
    )


def _mac(
    tag: str, secret: str | None = None, *, salt: str = "tidings.crm.reply-address", size: int = 16
) -> str:
    return salted_hmac(salt, tag, secret=secret, algorithm="sha256").hexdigest()[:size]


def _secrets() -> list[str]:
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def _signed(tag: str, mac: str, *, salt: str = "tidings.crm.reply-address") -> bool:
    return any(
        hmac.compare_digest(mac.lower(), _mac(tag, s, salt=salt, size=len(mac))) for s in _secrets()
    )


def _record(kind: str, pk: str) -> Thread | None:
    model = Enquiry if kind.lower() == "e" else SupportRequest
    return model.objects.filter(pk=int(pk)).first()


def _tag(record: Thread) -> str:
    return f"{'e' if isinstance(record, Enquiry) else 'r'}{record.pk}"


def reply_address(record: Thread) -> str:
    """The conversation's own address, or "" without a support address."""
    _, address = parseaddr(support_address())
    local, at, domain = address.rpartition("@")
    if not at:
        return ""
    tag = _tag(record)
    return f"{local}+{tag}.{_mac(tag)}@{domain}"


def thread_for_addresses(addresses: list[str]) -> Thread | None:
    """The conversation a reply address among ``addresses`` names, or None.  A token with a
    wrong signature (forged, mangled) is ignored, as is one whose record has been erased."""
    for address in addresses:
        for kind, pk, mac in _TOKEN.findall(address):
            if _signed(f"{kind.lower()}{pk}", mac) and (record := _record(kind, pk)):
                return record
    return None


def subject_tag(record: Thread) -> str:
    """The conversation's tag for the subject of what we send: "[#E-12-4f7c2a9b1e]"."""
    tag = _tag(record)
    return f"[#{tag[0].upper()}-{record.pk}-{_mac(tag, salt=_SUBJECT_SALT, size=10)}]"


def untagged(subject: str) -> str:
    """``subject`` without any conversation's tag (ours or one another thread's mail had)."""
    return _SUBJECT_TAG.sub("", subject).strip()


def tagged_subject(record: Thread, subject: str) -> str:
    """``subject`` ending with this conversation's tag, and no other."""
    return f"{untagged(subject)} {subject_tag(record)}".strip()


def thread_for_subject(subject: str) -> Thread | None:
    """The conversation a tag in ``subject`` names, or None: a tag whose signature is wrong
    (made up, mangled) or whose record is gone names none.  Whether the sender may write into
    it is the caller's to check."""
    for kind, pk, mac in _SUBJECT_TAG.findall(subject)[:5]:
        if _signed(f"{kind.lower()}{pk}", mac, salt=_SUBJECT_SALT) and (
            record := _record(kind, pk)
        ):
            return record
    return None


def thread_for_message_ids(message_ids: list[str]) -> Thread | None:
    """The conversation one of these Message-IDs (In-Reply-To, References) belongs to."""
    ids = [m.strip() for m in message_ids if m.strip()][:50]
    if not ids:
        return None
    message = (
        ConversationMessage.objects.filter(message_id__in=ids)
        .select_related("enquiry", "support_request")
        .order_by("-pk")
        .first()
    )
    if message is not None:
        return message.thread
    return (
        Enquiry.objects.filter(message_id__in=ids).first()
        or SupportRequest.objects.filter(message_id__in=ids).first()
    )


# --- the conversation -------------------------------------------------------------------------
def contact_of(record: Thread) -> Any:
    return record.contact if isinstance(record, Enquiry) else record.support_contact.contact


def messages_of(record: Thread) -> Any:
    field = "enquiry" if isinstance(record, Enquiry) else "support_request"
    return ConversationMessage.objects.filter(**{field: record}).select_related("author")


def thread_subject(record: Thread) -> str:
    """The conversation's subject so far: the person's own (an emailed enquiry or request), else
    the subject of the first mail we sent them (a web-form enquiry's acknowledgement); "" before
    either.  Every later mail is "Re: " it — mail programs such as Gmail thread by subject as
    well as by References, so an answer under another subject started a second conversation in
    the person's inbox.  Without any conversation's tag: ``tagged_subject`` adds this one's."""
    if record.subject and untagged(record.subject):
        return untagged(record.subject)
    if hasattr(record, "first_sent_subject"):  # read with its list (with_thread_subjects)
        return untagged(record.first_sent_subject or "")
    first = _first_sent(messages_of(record)).values_list("subject", flat=True).first()
    return untagged(first or "")


def _first_sent(messages: QuerySet) -> QuerySet:
    return (
        messages.filter(direction=ConversationMessage.Direction.OUT)
        .exclude(subject="")
        .order_by("pk")
    )


def with_thread_subjects(records: QuerySet) -> QuerySet:
    """``records`` (enquiries or support requests) each read with the subject of the first mail
    we sent them, which ``thread_subject`` then uses: a list of subject-less web enquiries cost
    one more query per enquiry."""
    kind = "enquiry" if records.model is Enquiry else "support_request"
    first = _first_sent(ConversationMessage.objects.filter(**{kind: OuterRef("pk")}))
    return records.annotate(first_sent_subject=Subquery(first.values("subject")[:1]))


def reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _thread_headers(record: Thread) -> dict[str, str]:
    ids = list(messages_of(record).exclude(message_id="").values_list("message_id", flat=True))
    if record.message_id:
        ids.insert(0, record.message_id)
    if not ids:
        return {}
    inbound = (
        messages_of(record)
        .filter(direction=ConversationMessage.Direction.IN)
        .exclude(message_id="")
        .order_by("-pk")
        .values_list("message_id", flat=True)
        .first()
    )
    # The last ten only: a References header has to stay one line of reasonable length.
    return {"In-Reply-To": inbound or ids[-1], "References": " ".join(ids[-10:])}


def _answers_mail(record: Thread) -> bool:
    """Whether the person wrote to us by mail in this conversation (a Message-ID of theirs)."""
    return bool(record.message_id) or (
        messages_of(record)
        .filter(direction=ConversationMessage.Direction.IN)
        .exclude(message_id="")
        .exists()
    )


def _send(record: Thread, *, kind: str, subject: str, text: str) -> tuple[int, str]:
    """Queue a message to the conversation's person; (queued row id, its Message-ID)."""
    from tidings.campaigns.messages import domain_of, message_id_for
    from tidings.campaigns.queue import enqueue_message

    sender = sender_address()
    headers = _thread_headers(record)
    reply_to = reply_address(record)
    if reply_to:
        headers["Reply-To"] = reply_to
    if kind == "crm:reply":  # written by an operator: a reply to it is welcome (RFC 3834)
        headers["Auto-Submitted"] = "no"
    elif _answers_mail(record):
        # Automatic mail in answer to the person's mail (an acknowledgement, "we did not keep
        # your files") is an auto-reply (RFC 3834 5.2), which other responders never answer;
        # the delivery engine's default, "auto-generated", is for mail that answers nothing.
        headers["Auto-Submitted"] = "auto-replied"
        headers["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    row = enqueue_message(
        contact_of(record),
        kind=kind,
        subject=subject,
        text=text,
        from_email=sender,
        headers=headers,
    )
    return row.pk, message_id_for("o", row.pk, domain_of(sender))


def automatic_mail_today(contact: Any, now: Any = None) -> int:
    """How many automatic mails (acknowledgements...) the CRM sent this person in 24 hours."""
    since = (now or timezone.now()) - timedelta(hours=24)
    return ConversationMessage.objects.filter(
        Q(enquiry__contact=contact) | Q(support_request__support_contact__contact=contact),
        direction=ConversationMessage.Direction.OUT,
        automatic=True,
        created_at__gte=since,
    ).count()


def send_automatic(record: Thread, key: str, extra: dict[str, Any] | None = None) -> bool:
    """Send system email ``key`` (acknowledgement, held, attachments) about ``record``, with the
    policy's words, and keep it in the conversation.  At most ``TIDINGS_ACKNOWLEDGEMENTS_PER_DAY``
    a person in 24 hours: a mail loop with an auto-responder that marks nothing runs dry there.
    Returns whether it was queued."""
    contact = contact_of(record)
    limit = int(getattr(settings, "TIDINGS_ACKNOWLEDGEMENTS_PER_DAY", 3))
    if automatic_mail_today(contact) >= limit:
        audit(f"{thread_field(record)}.acknowledgement_skipped", obj=record, reason="daily limit")
        return False
    subject, text, _ = render_system_email(key, {**emails.policy_words(record), **(extra or {})})
    if existing := thread_subject(record):
        subject = reply_subject(existing)  # in the conversation the person already has
    subject = tagged_subject(record, subject)
    outgoing, message_id = _send(record, kind=f"system:{key}", subject=subject, text=text)
    ConversationMessage.objects.create(
        **{thread_field(record): record},
        direction=ConversationMessage.Direction.OUT,
        automatic=True,
        subject=subject[:200],
        text=text,
        message_id=message_id,
        outgoing_id=outgoing,
    )
    return True


def thread_field(record: Thread) -> str:
    """The name of a message's field that points at ``record``."""
    return "enquiry" if isinstance(record, Enquiry) else "support_request"


def do_reply(
    record: Thread, *, text: str, actor: Any, status: str | None = None
) -> ConversationMessage:
    """An operator's answer, sent by email to the conversation's person and kept in it.

    Refused (ReplyRefused) when it holds special-category data: it would be sent and stored,
    and the policy says such data is never kept.  Sets the first response, moves an enquiry's
    "last contact" clock on, and moves the status (``status``; default: waiting for them)."""
    # Screening's engine is built (seconds, the first time) before the transaction, which on
    # SQLite holds the database's one write lock from its start.
    load_engine()
    return _reply(record, text=text, actor=actor, status=status)


@transaction.atomic
def _reply(record: Thread, *, text: str, actor: Any, status: str | None) -> ConversationMessage:
    from .work import TRANSITIONS, do_update_work

    if not support_address():
        raise NotConfigured(
            "Replies need a support address: set TIDINGS_SUPPORT_ADDRESS (see the README)."
        )
    text = kept_as_written(text)
    if not text.strip():
        raise CrmError("Write the reply first.")
    # Written to the person: "your diagnosis" is theirs (screening's ``addressed``).
    found = find_sensitive(text, addressed=True)
    if found:
        from .models import redaction_note

        categories = list(dict.fromkeys(finding.category for finding in found))
        raise ReplyRefused(
            f"The reply mentions {redaction_note(categories)}: we do not send or "
            "keep that kind of information. Please rephrase it."
        )
    subject = tagged_subject(
        record,
        reply_subject(thread_subject(record) or f"Your enquiry to {get_policy().controller.name}"),
    )
    outgoing, message_id = _send(record, kind="crm:reply", subject=subject, text=text)
    now = timezone.now()
    message = ConversationMessage.objects.create(
        **{thread_field(record): record},
        direction=ConversationMessage.Direction.OUT,
        author=actor if getattr(actor, "pk", None) else None,
        subject=subject[:200],
        text=text,
        message_id=message_id,
        outgoing_id=outgoing,
        created_at=now,
    )
    model = type(record)
    if record.first_response_at is None:
        model.objects.filter(pk=record.pk, first_response_at__isnull=True).update(
            first_response_at=now
        )
        record.first_response_at = now
    if isinstance(record, Enquiry):
        Enquiry.objects.filter(pk=record.pk, last_contact_at__lt=now).update(last_contact_at=now)
    audit(f"{thread_field(record)}.replied", actor=actor, obj=record, message=message.pk)
    target = status or model.Status.WAITING
    if target != record.status and target in TRANSITIONS[model][record.status]:
        do_update_work(record, actor=actor, status=target)
    return message
