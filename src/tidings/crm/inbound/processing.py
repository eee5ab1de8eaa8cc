"""What a mail to the support address does.

Every mail is first stored (``InboundMail``, unprocessed) in a transaction of its own, so
nothing that arrived is lost to a later error; then it is read and acted on in a second one.
What cannot be (not a mail, too large, a reply from an address that is not the person's...)
stays unprocessed with the reason, for an operator, who can try it again
(``do_retry_inbound_mail``).  In order:

1. a delivery report (a bounce, a complaint) goes to the bounce processing
   (``campaigns.bounces.processing.do_record_inbound_mail``);
2. automatic mail (an auto-reply, list mail, our own mail looping) opens nothing and is
   answered by nothing; an auto-reply to a conversation is noted in it, quietly;
3. a mail we already have (its Message-ID) is not added twice;
4. the conversation it belongs to: its reply-address token, then its ``In-Reply-To`` and
   ``References``, then the conversation's tag in its subject ("[#E-12-4f7c2a9b1e]", when the
   sender is that conversation's person); the message joins it (a closed one opens again) and
   its owner is told;
5. otherwise, from a support contact of an organisation with a contract in force: a new
   support request (from one without: held for an operator, the person told); from anyone
   else, a new enquiry ("email" must be one of the enquiry purpose's sources).

Its text is stripped of quoted history and signatures and screened for special-category data
before it is stored; attachments are kept only where the record's purpose lists
``attachments`` among what it collects, and otherwise the sender is told they were not.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from tidings.audience.emails import InvalidEmail, email_hmac, normalise_email
from tidings.audience.models import Contact
from tidings.lib.audit import audit
from tidings.lib.text import strip_format_characters
from tidings.policy import get_policy
from tidings.policy.records import EMAIL_SOURCE
from tidings.policy.screening import load_engine

from .. import conversations, emails, notifications
from ..actions import (
    ENQUIRY,
    SUPPORT,
    FreeTextRejected,
    clean_free_text,
    do_create_support_request,
    do_receive_enquiry,
    enquiry_channels,
)
from ..models import (
    ConversationAttachment,
    ConversationMessage,
    Enquiry,
    InboundMail,
    SupportContact,
    SupportRequest,
)
from . import mail as inbound

logger = logging.getLogger(__name__)
EMAIL_CHANNEL = EMAIL_SOURCE
DEFAULT_MAX_BYTES = 10 * 1024**2
OTHER_ADDRESS = "from an address that is not the person's"
# Mail known as an out-of-office reply only by its subject ("Out of office: …", "Automatic
# reply: …", with no header saying it is automatic): a person may write such a subject, and
# dropping it lost their mail for good.  It opens nothing and is answered by nothing, but it
# is kept for an operator, who can open a conversation for its sender.
BY_SUBJECT_ONLY = "known as automatic only by its subject"
# A NUL byte in a header that says who sent the mail (``inbound.SENDER_HEADERS``): which
# address it is depends on who reads it.  A program that stops at the NUL (C strings: the mail
# server's SPF, DKIM and DMARC checks may be such programs) reads "grace@exam" in
# "grace@exam\0ple.org", tidings, dropping it, "grace@example.org": a mail that passed those
# checks as one sender would join another's conversation.  Kept for an operator, who may open
# a conversation for its sender once they have looked (``do_open_as_new``).
NUL_IN_SENDER = "a NUL byte in who sent it"
# A mail whose reading failed in a way that would fail again at every try (a bug on this
# message: the parser's, or ours).  Kept whole, its message downloadable by those who may see
# unscreened mail (``may_download``); answered 250, so the mail server neither retries it for
# days nor sends the customer a bounce.
UNREADABLE = "a message could not be read"
KEPT_FOR_OPERATOR = "kept as it came, for an operator to download and read"
# What is temporary: the database gone or locked, the disk full (the error tells nothing of
# the message).  The mail server keeps the mail and sends it again (451, the pipe's 75).
TEMPORARY: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    MemoryError,
)


class Unprocessed(Exception):
    """Leave the mail unprocessed with this reason (no personal data in it)."""


@dataclass
class Outcome:
    status: str
    reason: str
    contact: Contact | None = None
    message: ConversationMessage | None = None


def max_bytes() -> int:
    return int(getattr(settings, "TIDINGS_INBOUND_MAX_BYTES", 0) or DEFAULT_MAX_BYTES)


# --- arriving ---------------------------------------------------------------------------------
def do_receive_inbound(raw: bytes, source: str) -> InboundMail:
    """A mail to the support address (the MTA pipe, the mailbox): stored, then processed.
    Never raises for what is in the mail; the row says what happened."""
    with transaction.atomic():
        row = InboundMail.objects.create(source=source[:40], raw=raw, size=len(raw))
    return _process(row)


def is_not_mail(row: InboundMail) -> bool:
    """Whether what arrived was kept because it is not a mail message at all: the one outcome
    a mail server is told of as a failure (the pipe's non-zero exit, the LMTP server's 550).
    Anything else that arrived is mail, processed or kept for an operator: nothing for the
    mail server to keep in its queue or send back."""
    return row.status == InboundMail.Status.UNPROCESSED and row.reason.startswith("not a mail")


def do_retry_inbound_mail(row: InboundMail) -> InboundMail:
    """Process an unprocessed mail again (after the operator fixed what stopped it)."""
    if row.status != InboundMail.Status.UNPROCESSED:
        return row
    if not bytes(row.raw):
        _note(row, "the message is no longer kept: it cannot be read again")
        return row
    return _process(row)


def do_open_as_new(row: InboundMail, *, actor: Any = None) -> InboundMail:
    """An operator's answer to a reply from an address that is not the conversation's person
    (a colleague in copy, the person's other address), or to a person's mail whose subject
    read as an out-of-office reply's: it opens a conversation of its own for its sender, as
    mail that matched nothing does, and never joins the other person's.  Without this such
    mail could only wait, unanswered, until its message was dropped.  Mail kept for its
    subject gets no acknowledgement (were it an auto-reply after all, two responders would
    loop): the operator answers it."""
    if row.status != InboundMail.Status.UNPROCESSED or not may_open_as_new(row):
        return row
    if not bytes(row.raw):
        _note(row, "the message is no longer kept: it cannot be read again")
        return row
    row = _process(row, follow_thread=False, by_person=True)
    if row.status != InboundMail.Status.UNPROCESSED:
        audit("inbound_mail.opened_as_new", actor=actor, obj=row)
    return row


def from_another_address(row: InboundMail) -> bool:
    """Whether the mail was kept because it replies to someone else's conversation."""
    return row.status == InboundMail.Status.UNPROCESSED and OTHER_ADDRESS in row.reason


def kept_for_its_subject(row: InboundMail) -> bool:
    """Whether the mail was kept because only its subject says it is an out-of-office reply."""
    return row.status == InboundMail.Status.UNPROCESSED and BY_SUBJECT_ONLY in row.reason


def kept_for_a_nul_in_its_sender(row: InboundMail) -> bool:
    """Whether the mail was kept because a NUL byte sat in who sent it."""
    return row.status == InboundMail.Status.UNPROCESSED and row.reason.startswith(NUL_IN_SENDER)


def could_not_be_read(row: InboundMail) -> bool:
    """Whether the mail was kept because reading it failed (``UNREADABLE``)."""
    return row.status == InboundMail.Status.UNPROCESSED and row.reason.startswith(UNREADABLE)


def may_download(user: Any) -> bool:
    """Whether ``user`` may download a kept mail's message as it came: it is unscreened (the
    special-category data screening keeps out of every record may be in it), so only those
    who may see what screening and erasure are about, the ``privacy`` permission (owners and
    privacy officers), not every operator who answers mail."""
    from tidings.lib.access import has_permission

    return has_permission(user, "privacy")


def do_download_inbound_mail(row: InboundMail, *, actor: Any) -> bytes:
    """The kept mail's message as it came, for an operator; audited (who read which mail).
    Raises ValueError when it is no longer kept (processed, or past the keeping period)."""
    raw = bytes(row.raw)
    if not raw:
        raise ValueError("its message is no longer kept")
    audit("inbound_mail.downloaded", actor=actor, obj=row, size=len(raw))
    return raw


def may_open_as_new(row: InboundMail) -> bool:
    """Whether an operator may open a conversation for the kept mail's sender."""
    return (
        from_another_address(row) or kept_for_its_subject(row) or kept_for_a_nul_in_its_sender(row)
    )


def headers_of(row: InboundMail) -> tuple[str, str]:
    """(sender, subject) of a kept mail, for the operator who checks it ("" when gone).  The
    subject is screened like any text shown or kept: the mail itself is not (yet)."""
    # A NUL byte shows as "\ufffd" (the replacement character, which every font has): the
    # operator checking a mail kept for one in who sent it sees where it sits
    # ("alan@exam\ufffdple.org"), not the address tidings would read.  "[NUL]" broke the
    # address apart ("<alan@exam>"): brackets are an address's punctuation.
    head = bytes(row.raw)[:65536].replace(b"\x00", "\ufffd".encode())
    if not head:
        return "", ""
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    subject = inbound.header(parsed, "Subject")[:200]
    try:
        subject = clean_free_text(subject)[0] if subject else ""
    except FreeTextRejected as exc:
        subject = f"(not shown: {exc})"
    return inbound.header(parsed, "From")[:300], subject


def retry_unprocessed() -> tuple[int, int]:
    tried = processed = 0
    for row in InboundMail.objects.filter(status=InboundMail.Status.UNPROCESSED).exclude(raw=b""):
        tried += 1
        processed += do_retry_inbound_mail(row).status != InboundMail.Status.UNPROCESSED
    return tried, processed


def purge_kept_mail(now: Any = None) -> int:
    """Drop the bytes of unprocessed mail older than ``TIDINGS_INBOUND_KEEP_DAYS`` (they hold
    what a person wrote), and the rows of handled mail older than that (only facts remain)."""
    days = int(getattr(settings, "TIDINGS_INBOUND_KEEP_DAYS", 30))
    cutoff = (now or timezone.now()) - timedelta(days=days)
    old = InboundMail.objects.filter(received_at__lt=cutoff)
    blanked = old.exclude(raw=b"").update(raw=b"")
    deleted, _ = old.exclude(status=InboundMail.Status.UNPROCESSED).delete()
    return blanked + deleted


def _note(row: InboundMail, reason: str, *, keep_raw: bool = True) -> None:
    row.status = InboundMail.Status.UNPROCESSED
    row.reason = reason[:300]
    values: dict[str, Any] = {"status": row.status, "reason": row.reason}
    if not keep_raw:
        row.raw = values["raw"] = b""
    InboundMail.objects.filter(pk=row.pk).update(**values)


def _process(
    row: InboundMail, *, follow_thread: bool = True, by_person: bool = False
) -> InboundMail:
    """Read and act on the stored mail.  Raises only what is temporary (``TEMPORARY``: the
    database or the disk), for the mail server to send the mail again later; any other failure
    (a bug in reading this one message, which would fail again at every try) keeps the mail
    for an operator with ``UNREADABLE`` as its reason."""
    try:
        return _read_and_act(row, follow_thread=follow_thread, by_person=by_person)
    except TEMPORARY:
        raise
    except Exception as exc:
        _log_failure(row, exc)
        _note(row, f"{UNREADABLE} ({type(exc).__name__}): {KEPT_FOR_OPERATOR}")
        return row


def _log_failure(row: InboundMail, exc: BaseException) -> None:
    # Where it failed, but not the error's text: a database error quotes the values it was
    # given (PostgreSQL's "Key (email)=(grace@…) already exists"), and a mail's text would
    # be in the log that screening kept out of the database.
    logger.error(
        "inbound mail %s could not be processed (%s); traceback without its message:\n%s",
        row.pk,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )


def _read_and_act(row: InboundMail, *, follow_thread: bool, by_person: bool) -> InboundMail:
    raw = bytes(row.raw)
    if len(raw) > max_bytes():
        _note(row, f"too large: {len(raw):,} bytes, over the limit of {max_bytes():,}")
        return row
    try:
        message = inbound.read(raw)
    except inbound.NotMail as exc:
        _note(row, f"not a mail message: {exc}")
        return row
    except inbound.Unreadable as exc:
        _note(row, f"unreadable: {exc}")
        return row
    if inbound.is_report(message):
        return _hand_to_bounces(row, raw)
    _remember_sender(row, message)  # outside the transaction below: kept even if it fails
    nuls = inbound.headers_with_nul(raw)
    # Screening's engine takes seconds to build: not while the transaction below holds the
    # database (on SQLite its one write lock: the worker and the web pages would wait on it).
    load_engine()
    try:
        with transaction.atomic():
            outcome = _act(
                row, message, follow_thread=follow_thread, by_person=by_person, nuls=nuls
            )
            if nuls:  # for the operator: a mail program that writes them may need a look
                outcome.reason += f"; NUL bytes dropped from its headers ({', '.join(nuls)})"
            row.status, row.reason = outcome.status, outcome.reason[:300]
            row.contact, row.message = outcome.contact, outcome.message
            row.processed_at = timezone.now()
            row.raw = b""  # done with: the conversation holds what is kept
            row.save()
    except Unprocessed as exc:
        _note(row, str(exc))
    except FreeTextRejected as exc:
        # The policy says such text is refused, not redacted: nothing of it is kept.
        _note(row, f"refused: {exc}", keep_raw=False)
    except Exception as exc:  # never a crash, never a lost mail: the operator sees why
        _log_failure(row, exc)
        _note(row, f"could not be processed ({type(exc).__name__}); try again later")
    return row


def _hand_to_bounces(row: InboundMail, raw: bytes) -> InboundMail:
    from tidings.campaigns.bounces.processing import do_record_inbound_mail

    report = do_record_inbound_mail(raw, source=f"support:{row.source}")
    InboundMail.objects.filter(pk=row.pk).update(
        status=InboundMail.Status.IGNORED,
        reason=f"a delivery report: passed to bounce processing (report #{report.pk})",
        raw=b"",
        processed_at=timezone.now(),
    )
    row.refresh_from_db()
    return row


# --- deciding ---------------------------------------------------------------------------------
def _remember_sender(row: InboundMail, message: Any) -> None:
    """The sender's address as an HMAC, so an erasure finds their mail even unprocessed."""
    address = inbound.sender(message)[1]
    try:
        row.sender_hmac = email_hmac(normalise_email(address)) if address else ""
    except InvalidEmail:
        row.sender_hmac = ""
    InboundMail.objects.filter(pk=row.pk).update(sender_hmac=row.sender_hmac)


def _sender(message: Any) -> tuple[str, str]:
    name, address = inbound.sender(message)
    if not address:
        raise Unprocessed("no sender address in it")
    try:
        return name, normalise_email(address)
    except InvalidEmail:
        raise Unprocessed("the sender's address is not a valid email address") from None


def _same_person(record: conversations.Thread, address: str) -> bool:
    return conversations.contact_of(record).email.lower() == address.lower()


def _thread(message: Any, address: str) -> tuple[conversations.Thread | None, str]:
    record = conversations.thread_for_addresses(inbound.recipients(message))
    if record is not None:
        return record, "reply address"
    # Each header on its own, so the reason says which matched: a mail program that drops
    # In-Reply-To (or gives the id of another mail in it) may keep our id in References.
    for name in ("In-Reply-To", "References"):
        ids = inbound.message_ids(inbound.header(message, name))
        record = conversations.thread_for_message_ids(ids)
        if record is not None:
            return record, name
    # A reply that lost every header we set (another mail program, forwarded back to us) still
    # has the tag in its subject.  It joins only its own person's conversation: mail from
    # anyone else with that subject (forwarded on to a colleague, who writes to us) opens a
    # conversation of its own, as mail that names none does, and is never kept back.
    record = conversations.thread_for_subject(inbound.header(message, "Subject"))
    if record is not None and _same_person(record, address):
        return record, "the conversation's tag in its subject"
    return None, ""


def _already_have(message_id: str) -> bool:
    if not message_id:
        return False
    return (
        ConversationMessage.objects.filter(message_id=message_id).exists()
        or Enquiry.objects.filter(message_id=message_id).exists()
        or SupportRequest.objects.filter(message_id=message_id).exists()
    )


def _act(
    row: InboundMail,
    message: Any,
    *,
    follow_thread: bool = True,
    by_person: bool = False,
    nuls: Sequence[str] = (),
) -> Outcome:
    """``by_person``: an operator has said that a person wrote this mail kept for its
    subject (or with a NUL byte in who sent it): the subject no longer makes it automatic,
    and nothing is sent for it.  ``nuls``: the headers NUL bytes were dropped from."""
    name, address = _sender(message)
    in_sender = [n for n in nuls if n in inbound.SENDER_HEADERS]
    if in_sender and not by_person:
        raise Unprocessed(
            f"{NUL_IN_SENDER} ({', '.join(in_sender)}): programs may read another address "
            "there than tidings does; check it: if its sender wrote it, open a conversation "
            "for its sender"
        )
    contact = Contact.objects.with_email(address).first()
    why_automatic = inbound.automatic(message, own_address=_own_address())
    by_subject = why_automatic == inbound.BY_SUBJECT
    if by_subject and by_person:
        why_automatic = ""
    message_id = (inbound.message_ids(inbound.header(message, "Message-ID")) or [""])[0]
    if _already_have(message_id):
        return Outcome(InboundMail.Status.PROCESSED, "already received (the same Message-ID)")
    record, how = _thread(message, address) if follow_thread else (None, "")
    if record is not None and not _same_person(record, address):
        if why_automatic and not by_subject:
            # An out-of-office reply from the person's other address (an alias, a colleague's
            # mailbox they forward to): nothing for an operator to check or open.
            return Outcome(
                InboundMail.Status.IGNORED,
                f"automatic mail ({why_automatic}) about {_label(record)} {OTHER_ADDRESS}: "
                "no ticket opened, nothing sent",
                contact,
            )
        raise Unprocessed(
            f"a reply to {_label(record)} ({how}) {OTHER_ADDRESS}: check who sent it; it can "
            "open a conversation of its own"
        )
    if why_automatic:
        if record is None and by_subject:
            raise Unprocessed(
                f"{BY_SUBJECT_ONLY} (an out-of-office reply's, but no header says so): no "
                "ticket opened, nothing sent; check it: if a person wrote it, open a "
                "conversation for its sender"
            )
        if record is None:
            return Outcome(
                InboundMail.Status.IGNORED,
                f"automatic mail ({why_automatic}): no ticket opened, nothing sent",
                contact,
            )
        added = _add(record, message, message_id, automatic=True)
        return Outcome(
            InboundMail.Status.IGNORED,
            f"automatic mail ({why_automatic}): noted in {_label(record)}; nobody told, "
            "nothing sent",
            contact,
            added,
        )
    quiet = inbound.no_automatic_answer(message)
    if by_subject and by_person:
        quiet = "an operator opened it (its subject read as an out-of-office reply's)"
    if record is not None:
        added = _add(record, message, message_id, answer=not quiet)
        return Outcome(
            InboundMail.Status.PROCESSED, f"added to {_label(record)} (by {how})", contact, added
        )
    outcome = _open(message, name, address, contact, message_id, answer=not quiet)
    if quiet:
        outcome.reason += f"; nothing sent: {quiet}"
    return outcome


def _own_address() -> str:
    from email.utils import parseaddr

    return parseaddr(conversations.support_address())[1]


def _label(record: conversations.Thread) -> str:
    return f"enquiry #{record.pk}" if isinstance(record, Enquiry) else f"request #{record.pk}"


def _subject(message: Any) -> str:
    subject = strip_format_characters(inbound.header(message, "Subject")).strip()
    cleaned, _ = clean_free_text(subject[:200]) if subject else ("", ())
    return cleaned


def _keeps_attachments(record: conversations.Thread) -> bool:
    purpose = ENQUIRY if isinstance(record, Enquiry) else SUPPORT
    return "attachments" in get_policy().fields_for(purpose).all


def _add(
    record: conversations.Thread,
    message: Any,
    message_id: str,
    *,
    automatic: bool = False,
    answer: bool = True,
) -> ConversationMessage:
    """The person's mail joins the conversation; it opens again if it was closed or waiting."""
    from ..work import do_update_work

    body = inbound.content(message)
    text, removed = clean_free_text(body.text or "(no text)")
    keep_files = _keeps_attachments(record) and not automatic
    added = ConversationMessage.objects.create(
        **{conversations.thread_field(record): record},
        direction=ConversationMessage.Direction.IN,
        automatic=automatic,
        subject=_subject(message),
        text=text,
        redacted_categories=list(removed),
        attachments_dropped=0 if keep_files else len(body.attachments),
        message_id=message_id[:300],
    )
    if keep_files:
        ConversationAttachment.objects.bulk_create(
            ConversationAttachment(
                message=added,
                filename=_screened(a.filename),
                content_type=a.content_type,
                size=len(a.data),
                data=a.data,
            )
            for a in body.attachments
        )
    kind = conversations.thread_field(record)
    audit(
        f"{kind}.mail_received",
        actor_label="inbound mail",
        obj=record,
        message=added.pk,
        automatic=automatic,
        redacted=len(removed),
        attachments=len(body.attachments),
    )
    if automatic:
        return added
    if isinstance(record, Enquiry):
        Enquiry.objects.filter(pk=record.pk, last_contact_at__lt=added.created_at).update(
            last_contact_at=added.created_at
        )
    reopen = type(record).Status.OPEN
    if record.status != reopen and (record.is_closed or record.status == "waiting"):
        from ..work import TRANSITIONS

        if reopen in TRANSITIONS[type(record)][record.status]:
            do_update_work(record, actor=None, actor_label="inbound mail", status=reopen)
    notifications.notify_owner(record, "reply")
    if body.attachments and not keep_files and answer:
        conversations.send_automatic(
            record, emails.ATTACHMENTS, {"attachment_count": len(body.attachments)}
        )
    return added


def _open(
    message: Any,
    name: str,
    address: str,
    contact: Contact | None,
    message_id: str,
    *,
    answer: bool = True,
) -> Outcome:
    """A new conversation: a support request, a held one, or an enquiry; acknowledged (and
    told of files not kept) unless ``answer`` is false."""
    body = inbound.content(message)
    subject = inbound.header(message, "Subject")[:200]
    if contact is not None:
        roles = list(
            SupportContact.objects.filter(contact=contact)
            .select_related("organisation")
            .order_by("-pk")
        )
        if roles:
            from ..support import standing

            role = next((r for r in roles if standing(r) is not None), roles[0])
            request = do_create_support_request(
                role,
                subject=subject,
                notes=body.text or "(no text)",
                actor_label="inbound mail",
                message_id=message_id,
                check_contract=True,
                acknowledge=answer,
                notify=True,
            )
            _files(request, body, answer=answer)
            held = request.status == SupportRequest.Status.HELD
            return Outcome(
                InboundMail.Status.PROCESSED,
                f"{'held' if held else 'new'} support request #{request.pk}"
                + (": no contract in force for the sender" if held else ""),
                contact,
            )
    if EMAIL_CHANNEL not in enquiry_channels():
        raise Unprocessed(
            'no conversation matched, and "email" is not one of the enquiry purpose\'s '
            "sources in the policy: nothing opened"
        )
    name = strip_format_characters(name).strip()
    person = {"email": address, "name": name or address.partition("@")[0]}
    enquiry = do_receive_enquiry(
        person,
        channel=EMAIL_CHANNEL,
        subject=subject,
        message=body.text or "(no text)",
        message_id=message_id,
        actor_label="inbound mail",
        acknowledge=answer,
        notify=True,
    )
    _files(enquiry, body, answer=answer)
    return Outcome(
        InboundMail.Status.PROCESSED,
        f"new enquiry #{enquiry.pk}",
        Contact.objects.get(pk=enquiry.contact_id),
    )


def _screened(filename: str) -> str:
    """A file's name is text the person wrote ("my HIV test results.pdf"): screened like the
    rest, since operators see it beside the message; its extension stays."""
    stem, dot, extension = filename.rpartition(".")
    if not (dot and stem and extension.isalnum() and len(extension) <= 16):
        stem, dot, extension = filename, "", ""
    return (clean_free_text(stem)[0] + dot + extension)[:200]


def _files(record: conversations.Thread, body: inbound.Content, *, answer: bool = True) -> None:
    """Attachments of a mail that opened a conversation: kept in it where the purpose lists
    them (as a message of their own), else the sender is told they were not."""
    if not body.attachments:
        return
    if _keeps_attachments(record):
        holder = ConversationMessage.objects.create(
            **{conversations.thread_field(record): record},
            direction=ConversationMessage.Direction.IN,
            text=f"{len(body.attachments)} attachment(s) sent with the first message.",
        )
        ConversationAttachment.objects.bulk_create(
            ConversationAttachment(
                message=holder,
                filename=_screened(a.filename),
                content_type=a.content_type,
                size=len(a.data),
                data=a.data,
            )
            for a in body.attachments
        )
        return
    if answer:
        conversations.send_automatic(
            record, emails.ATTACHMENTS, {"attachment_count": len(body.attachments)}
        )
