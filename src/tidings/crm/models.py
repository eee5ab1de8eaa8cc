"""The CRM: organisations, enquiries, orders, contracts, support contacts and support requests.

People live on ``audience.Contact`` (one person, one Contact); these records point at it and carry
the clocks their retention rule runs from (``rights/retention.py`` reads them; the policy's
``[retention.<kind>]`` says how long).  Records that hold a person are PROTECTed against deleting
the Contact behind their back: they go through the retention sweep or an erasure, never by cascade.
Create and change them only through ``crm/actions.py``.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from tidings.audience.models import Contact
from tidings.policy.schema import SENSITIVE_TEXT


def redaction_note(categories: list[str]) -> str:
    """ "health, political opinions": what screening removed from a text (never the words)."""
    return ", ".join(SENSITIVE_TEXT.get(c, c.replace("_", " ")) for c in categories)


class Organisation(models.Model):
    """A company we deal with.  Not a person: nothing here is personal data."""

    name = models.CharField(max_length=200)
    address = models.TextField(blank=True, help_text="The organisation's own address.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(Lower("name"), name="crm_organisation_name_lower")]

    def __str__(self) -> str:
        return self.name


class KeptOnRequest(models.Model):
    """The fields of an extension "on request": the person asked us to keep the record longer.

    A record then expires at the later of its rule's expiry and ``kept_until`` (midnight UTC at
    the start of that day), so an extension can only ever push the date out, never bring it in.
    Recorded with ``crm.actions.do_extend_retention``, which checks that the policy's rule for
    the record kind says ``extendable_on_request``.
    """

    kept_until = models.DateField(null=True, blank=True)
    kept_until_requested_by = models.CharField(
        max_length=200, blank=True, help_text="Who asked us to keep it longer, and how."
    )
    kept_until_recorded_at = models.DateTimeField(null=True, blank=True)
    kept_until_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True


class WorkItem(models.Model):
    """The fields that make a record a piece of work: who has it, where it stands, what next.

    Changed only through ``crm/work.py`` (``do_*`` actions with audit entries).  ``status`` moves
    through each kind's ``Status``; the reminder fields remember the due date a reminder was sent
    for, so each due date reminds its owner once (a new date, a new reminder).
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The operator who has it.",
    )
    next_action_on = models.DateField(null=True, blank=True, help_text="When to act on it next.")
    closed_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(
        max_length=300, blank=True, help_text="The Message-ID of the mail that opened it."
    )
    due_reminded_on = models.DateField(null=True, blank=True)
    overdue_reminded_on = models.DateField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_closed(self) -> bool:
        return self.status in self.CLOSED  # type: ignore[attr-defined]


class Enquiry(KeptOnRequest, WorkItem):
    """Someone asked us something: by the website's contact form, email, phone..."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        WAITING = "waiting", "Waiting for them"
        WON = "won", "Closed: won"
        LOST = "lost", "Closed: lost"

    CLOSED = frozenset({Status.WON, Status.LOST})

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="enquiries")
    channel = models.CharField(
        max_length=50, help_text="Where it came from: one of the enquiry purpose's sources."
    )
    subject = models.CharField(
        max_length=200, blank=True, help_text="Screened.  An emailed enquiry's subject."
    )
    message = models.TextField(help_text="Screened: special-category data is removed.")
    redacted_categories = models.JSONField(
        default=list,
        blank=True,
        help_text="Special categories screening removed from the message (never the text).",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    created_at = models.DateTimeField(default=timezone.now)
    # The retention clock "last_contact": moved on each time we are in touch about it.
    last_contact_at = models.DateTimeField(default=timezone.now)
    # When its work last changed (status, owner, next action, its text): "My work" shows it.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "enquiries"
        indexes = [
            models.Index(fields=["last_contact_at"]),
            # The queue's filters page newest first (keyset on id) by status and owner.
            models.Index(fields=["status", "-id"], name="crm_enquiry_status"),
            models.Index(fields=["owner", "status", "-id"], name="crm_enquiry_owner"),
            models.Index(
                fields=["next_action_on"],
                condition=models.Q(status__in=["new", "open", "waiting"]),
                name="crm_enquiry_due",
            ),
        ]

    def __str__(self) -> str:
        return f"Enquiry #{self.pk}"

    @property
    def redaction_note(self) -> str:
        return redaction_note(self.redacted_categories)


class Order(KeptOnRequest):
    """An order and its invoice details (kept for the legal minimum, e.g. 6 years)."""

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="orders")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    order_reference = models.CharField(max_length=100, blank=True)
    # [{"quantity": 2, "description": "Support hours", "unit_price": "95.00"}, ...]
    lines = models.JSONField(default=list, blank=True)
    invoice_address = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)  # the retention clock "created"

    class Meta:
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(Lower("order_reference"), name="crm_order_reference_lower"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class Contract(models.Model):
    """A contract with an organisation.  Its end is the "contract_end" clock of the people on it:
    see ``rights/retention.py`` (the latest end of the organisation's contracts, once all have
    an end)."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="contracts"
    )
    reference = models.CharField(max_length=100, blank=True)
    start = models.DateField()
    end = models.DateField(null=True, blank=True, help_text="Blank while it runs on.")
    first_response_hours = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="First-response target for its support requests, in business hours.",
    )
    licensed_users = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many named users the licence allows."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(end__gte=models.F("start")),
                name="crm_contract_ends_after_start",
            )
        ]
        indexes = [models.Index(fields=["end"])]

    def __str__(self) -> str:
        return f"Contract #{self.pk}"

    def in_force(self, day: date) -> bool:
        return self.start <= day and (self.end is None or self.end >= day)


class SupportContact(KeptOnRequest):
    """A person at an organisation we support under contract (contact × organisation)."""

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="support_roles")
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="support_contacts"
    )
    left_employer = models.DateField(
        null=True, blank=True, help_text="When we learnt they left the organisation."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "organisation"], name="crm_one_support_role_per_organisation"
            )
        ]
        indexes = [models.Index(fields=["left_employer"])]

    def __str__(self) -> str:
        return f"Support contact #{self.pk}"


class SupportRequest(WorkItem):
    """A request for support.  It belongs to the support contact who made it and goes with them:
    nothing a person wrote outlives the retention of their support-contact record.

    It belongs to the contract that was in force when it came (``contract``); one from someone
    who is not a support contact under a contract in force is ``held`` until an operator accepts
    it (``crm/support.py``).  ``response_due_at`` is the contract's first-response target, in
    business hours, from when it came or was accepted.
    """

    class Status(models.TextChoices):
        HELD = "held", "Held: not under a contract in force"
        NEW = "new", "New"
        OPEN = "open", "Open"
        WAITING = "waiting", "Waiting for them"
        SOLVED = "solved", "Solved"
        DECLINED = "declined", "Declined"

    CLOSED = frozenset({Status.SOLVED, Status.DECLINED})

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="support_requests"
    )
    support_contact = models.ForeignKey(
        SupportContact, on_delete=models.CASCADE, related_name="requests"
    )
    contract = models.ForeignKey(
        Contract, on_delete=models.SET_NULL, null=True, blank=True, related_name="requests"
    )
    subject = models.CharField(max_length=200)
    notes = models.TextField(blank=True, help_text="Screened: special-category data is removed.")
    redacted_categories = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    response_due_at = models.DateTimeField(null=True, blank=True)
    response_reminded_at = models.DateTimeField(null=True, blank=True)
    breach_reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "-id"], name="crm_request_status"),
            models.Index(fields=["owner", "status", "-id"], name="crm_request_owner"),
            models.Index(
                fields=["next_action_on"],
                condition=models.Q(status__in=["new", "open", "waiting"]),
                name="crm_request_due",
            ),
            models.Index(
                fields=["response_due_at"],
                condition=models.Q(first_response_at__isnull=True),
                name="crm_request_response_due",
            ),
        ]

    def __str__(self) -> str:
        return f"Support request #{self.pk}"

    @property
    def redaction_note(self) -> str:
        return redaction_note(self.redacted_categories)


# --- conversations ----------------------------------------------------------------------------
class ConversationMessage(models.Model):
    """One message of an enquiry's or a support request's conversation: what the person wrote
    (by email), what we answered (sent through the delivery engine), or an operator's internal
    note.  Personal data of the record it belongs to: exported with it, erased with it, and swept
    with its retention rule (the record goes, its messages go: CASCADE).

    ``text`` is screened before it is stored (special categories removed) and, for mail that
    came in, stripped of quoted history and signatures; the sender's HTML is never kept or
    shown as HTML.  ``message_id`` is the mail's Message-ID (ours for what we sent), which a
    reply's In-Reply-To or References leads back to.
    """

    class Direction(models.TextChoices):
        IN = "in", "From them"
        OUT = "out", "From us"
        NOTE = "note", "Internal note"

    enquiry = models.ForeignKey(
        Enquiry, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    support_request = models.ForeignKey(
        SupportRequest, on_delete=models.CASCADE, null=True, blank=True, related_name="messages"
    )
    direction = models.CharField(max_length=4, choices=Direction.choices)
    automatic = models.BooleanField(
        default=False, help_text="An acknowledgement we sent, or an auto-reply they sent."
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subject = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True, help_text="Screened: special-category data is removed.")
    redacted_categories = models.JSONField(default=list, blank=True)
    attachments_dropped = models.PositiveSmallIntegerField(
        default=0, help_text="Attachments that came with it and were not kept (the policy)."
    )
    message_id = models.CharField(max_length=300, blank=True)
    outgoing_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The queued message (campaigns.OutgoingMessage) it went as.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(enquiry__isnull=False, support_request__isnull=True)
                    | models.Q(enquiry__isnull=True, support_request__isnull=False)
                ),
                name="crm_message_in_one_thread",
            )
        ]
        indexes = [
            models.Index(
                fields=["message_id"], condition=~models.Q(message_id=""), name="crm_message_id"
            )
        ]

    def __str__(self) -> str:
        return f"Message #{self.pk}"

    @property
    def thread(self) -> Enquiry | SupportRequest:
        return self.enquiry if self.enquiry_id else self.support_request  # type: ignore[return-value]

    @property
    def redaction_note(self) -> str:
        return redaction_note(self.redacted_categories)


class ConversationAttachment(models.Model):
    """A file that came with a message, kept only when the purpose of its record lists
    ``attachments`` among the fields it collects (otherwise the sender is told it was not)."""

    message = models.ForeignKey(
        ConversationMessage, on_delete=models.CASCADE, related_name="attachments"
    )
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    data = models.BinaryField()

    def __str__(self) -> str:
        return f"Attachment #{self.pk}"


class InboundMail(models.Model):
    """A mail that arrived at the support address (``tidings inbound process``, the mailbox),
    and what was done with it.

    Stored first, in a transaction of its own, so nothing that arrived is lost to a later error;
    then processed.  What could not be (not a mail, too large, not matched) stays
    ``unprocessed`` with the reason, for an operator.  The raw message is kept only while it is
    unprocessed, and at most ``TIDINGS_INBOUND_KEEP_DAYS``; the sender is kept as an HMAC, so an
    erasure finds their unprocessed mail without the address being readable here.
    """

    class Status(models.TextChoices):
        UNPROCESSED = "unprocessed", "Unprocessed"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Automatic: no ticket"

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=40, help_text="pipe, imap or pop3; never personal.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UNPROCESSED)
    reason = models.CharField(max_length=300, blank=True, help_text="Never personal data.")
    size = models.PositiveIntegerField(default=0)
    sender_hmac = models.CharField(max_length=64, blank=True, db_index=True)
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        ConversationMessage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    raw = models.BinaryField(blank=True, default=b"", help_text="Kept while unprocessed only.")
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return f"Inbound mail #{self.pk} ({self.source}, {self.status})"


# --- operators --------------------------------------------------------------------------------
class OperatorPreference(models.Model):
    """An operator's CRM settings: how they hear of new work, and whether new work is theirs.

    ``notify``: every event by email as it happens, one daily digest, or nothing (the work is
    still on "My work").  ``mail_confirmations`` / ``mail_sent_back``: the mail about campaigns
    and journeys (``lib.operator_mail``) they want — asked to send or confirm one; one they
    wrote or confirmed sent back by a change (a campaign that paused itself is always sent).
    The rota: new enquiries (and support requests) are assigned in turn to
    the operators who take them (``last_assigned_at``, oldest first).
    """

    class Notify(models.TextChoices):
        EACH = "each", "Each event, as it happens"
        DIGEST = "digest", "A daily digest"
        NONE = "none", "Nothing"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crm_preference"
    )
    notify = models.CharField(max_length=6, choices=Notify.choices, default=Notify.NONE)
    mail_confirmations = models.BooleanField(default=True)
    mail_sent_back = models.BooleanField(default=True)
    takes_enquiries = models.BooleanField(default=False)
    takes_requests = models.BooleanField(default=False)
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    last_digest_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"CRM preferences of operator #{self.user_id}"


class OperatorNotification(models.Model):
    """One thing an operator is to be told by email: queued in the transaction that made the
    event, sent by the worker (``crm/notifications.py``) at once or in the daily digest.

    It names its record by kind and id only (no personal data here): when the mail is written,
    the record is read; a record erased meanwhile is simply not mentioned.
    """

    class Event(models.TextChoices):
        NEW_ENQUIRY = "new_enquiry", "New enquiry"
        DEMO_BOOKED = "demo_booked", "Demo booked"
        NEW_REQUEST = "new_request", "New support request"
        HELD_REQUEST = "held_request", "Support request held"
        REPLY = "reply", "New reply"
        ASSIGNED = "assigned", "Assigned to you"
        DUE = "due", "Due today"
        OVERDUE = "overdue", "Overdue"
        RESPONSE_DUE = "response_due", "First response due soon"
        RESPONSE_BREACHED = "response_late", "First response overdue"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crm_notifications"
    )
    event = models.CharField(max_length=20, choices=Event.choices)
    record_kind = models.CharField(max_length=20)  # "enquiry" | "support_request"
    record_id = models.BigIntegerField()
    digest = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["digest", "user", "id"],
                condition=models.Q(sent_at__isnull=True),
                name="crm_notification_pending",
            )
        ]

    def __str__(self) -> str:
        return f"Notification #{self.pk} ({self.event})"
