"""People, lists, subscriptions, the consent ledger and the suppression list."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from tidings.lib.models import AppendOnlyQuerySet

from .emails import InvalidEmail, email_key, normalise_email


def _contact_key(email: str) -> str:
    """The key of an address as given: of its normal form when it is valid (so a look-up with
    a differently spelled but equal address finds the contact), else of the trimmed text."""
    try:
        return email_key(normalise_email(email))
    except InvalidEmail:
        return email_key(email.strip())


class ContactQuerySet(models.QuerySet):
    def with_email(self, email: str) -> models.QuerySet:
        """The contact whose address is ``email`` by ``emails.email_key`` (full case folding,
        the same on SQLite and PostgreSQL): an index look-up on the unique ``email_key``.

        Never ``email__iexact`` or ``Lower("email")``: those fold case as the database does
        (SQLite: ASCII only), which is exactly the disagreement the key ends."""
        return self.filter(email_key=_contact_key(email))

    def kept_apart(self, email: str) -> list[Contact]:
        """Contacts the upgrade to ``email_key`` kept apart (NULL key) whose address has the
        same key as ``email``: one mailbox with the contact ``with_email`` finds, not yet
        merged by an operator (audience migration 0011).  Folded in Python over the NULL-key
        rows only (an index range; none at all on a database that never had such twins)."""
        key = _contact_key(email)
        twins = cast("list[Contact]", list(self.filter(email_key__isnull=True).order_by("pk")))
        return [c for c in twins if email_key(c.email) == key]


class Contact(models.Model):
    """One person.  Which of these fields may hold data is decided by the policy's categories."""

    # Columns for the fields the product knows; anything else the policy allows goes in attributes.
    COLUMN_FIELDS = ("email", "name", "phone", "company", "job_title", "work_address")
    # Columns shown and edited in a one-line text box: a line break or tab coming in from
    # outside (an import, the API) becomes a space (lib.text.one_line).  work_address is not.
    ONE_LINE_FIELDS = ("name", "phone", "company", "job_title")
    # A text column, limited by every form and the API (a text area has no browser limit).
    WORK_ADDRESS_MAX_LENGTH = 2000

    email = models.EmailField(max_length=254)
    # emails.email_key(email), computed in Python by save() and by the import writers: what
    # makes two addresses one person's, unique.  NULL only for a contact the upgrade to this
    # column found sharing its key with an older contact (audience migration 0011): kept
    # apart, reported by `tidings doctor` for an operator to merge.  Text, not varchar(254):
    # case folding can lengthen an address (ß -> ss).
    email_key = models.TextField(null=True, editable=False)  # noqa: DJ001 (NULL: kept apart)
    name = models.CharField(max_length=200, blank=True)
    phone = models.CharField(max_length=50, blank=True)
    company = models.CharField(max_length=200, blank=True)
    job_title = models.CharField(max_length=200, blank=True)
    work_address = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_contact_at = models.DateTimeField(null=True, blank=True)
    # Engagement facts, kept by the campaigns app as it records deliveries and events
    # (``campaigns.engagement``): the latest human open or click, human click, and sent campaign
    # message of this person's that is still kept.  The segment language's opened_in(90d) is
    # ``last_opened_at >= now - 90 days``, an index look-up instead of a semi-join over millions
    # of events.  Derived data: erasure clears them with the events they come from.
    last_opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_clicked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_received_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ContactQuerySet.as_manager()
    _loaded_email: str | None  # the address as read from the database (see save())

    class Meta:
        constraints = [
            # text_pattern_ops (PostgreSQL; SQLite ignores it): compares bytes, so the one
            # index enforces uniqueness, answers = and ON CONFLICT (email_key), and serves the
            # operator search's address prefixes (LIKE 'x%', which a btree under a non-C
            # collation cannot); the same reasoning as the lower(email) index it replaces
            # (migration 0006).
            models.UniqueConstraint(
                fields=["email_key"],
                name="contact_email_key_unique",
                opclasses=["text_pattern_ops"],
            ),
        ]
        # No index on Lower("name"): the operator search's LIKE 'x%' cannot use a plain btree
        # under a non-C collation (EXPLAIN at 1M contacts: a scan either way), and it cost
        # imports ~5 µs of server time a row.
        # updated_at: the journeys' segment trigger looks only at contacts changed since its
        # last check (journeys/segments.py), by this index.
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(fields=["updated_at"], name="contact_updated"),
            # Partial: a contact who never opened (every imported one) costs these nothing, and
            # "last_opened_at >= x" implies "is not null", so the planner uses them.
            *(
                models.Index(
                    fields=[field],
                    condition=models.Q(**{f"{field}__isnull": False}),
                    name=f"contact_{field}",
                )
                for field in ("last_opened_at", "last_clicked_at", "last_received_at")
            ),
        ]

    def __str__(self) -> str:
        return f"Contact #{self.pk}"  # never the address: str() ends up in logs

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saves, keeping ``email_key`` the key of ``email`` whenever the address is new or
        changed (a rectification), so every way a contact is written keeps it true; a save
        that does not write the address leaves the key alone (a contact kept apart by
        migration 0011 keeps its NULL key until an operator deals with it)."""
        update_fields = kwargs.get("update_fields")
        writes_email = update_fields is None or "email" in update_fields
        if (
            writes_email
            and "email" in self.__dict__
            and (self._state.adding or self.email != getattr(self, "_loaded_email", None))
        ):
            self.email_key = email_key(self.email)
            if update_fields is not None and "email_key" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "email_key"]
        super().save(*args, **kwargs)
        if "email" in self.__dict__:
            self._loaded_email = self.email

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any, **kwargs: Any) -> Contact:
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._loaded_email = instance.__dict__.get("email")
        return instance

    @classmethod
    def column_field(cls, name: str) -> models.Field[Any, Any]:
        """The model field behind one of the contact's own columns (never a relation)."""
        field = cls._meta.get_field(name)
        assert isinstance(field, models.Field)
        return field

    @classmethod
    def column_name(cls, name: str) -> str:
        """The database column of one of the contact's own fields."""
        return cls.column_field(name).get_attname_column()[1] or name

    @property
    def display_name(self) -> str:
        return self.name or self.email


class MailingList(models.Model):
    """A list people subscribe to.  Called "List" in DESIGN.md; renamed to keep `list` usable."""

    name = models.CharField(max_length=200, unique=True)
    topic = models.CharField(max_length=100, help_text="One of the policy's marketing topics.")
    description = models.TextField(blank=True)
    is_public = models.BooleanField(
        default=True, help_text="Public lists are offered in sign-up forms and preference centres."
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the list was closed: subscriptions then expire."
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "list"

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    # No index of their own (db_index=False): (contact, mailing_list) below serves lookups by
    # contact and (mailing_list, status) those by list; every index is paid for by each insert
    # (an import writes a million subscriptions).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="subscriptions", db_index=False
    )
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.CASCADE, related_name="subscriptions", db_index=False
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "mailing_list"], name="one_subscription"),
        ]
        # updated_at: subscriptions changed since a journey's segment check (journeys/segments.py).
        indexes = [
            models.Index(fields=["mailing_list", "status"]),
            models.Index(fields=["updated_at"], name="subscription_updated"),
        ]

    def __str__(self) -> str:
        return f"Subscription #{self.pk} ({self.status})"


class ConsentWording(models.Model):
    """The exact words a person saw when they gave or withdrew consent, stored once."""

    sha256 = models.CharField(max_length=64, unique=True)
    text = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Wording {self.sha256[:12]}"


class PendingPreferences(models.Model):
    """What a person chose on their preference page that waits for the click in the
    confirmation email sent to their address: contact by telephone or post, open and click
    statistics, a new name or company.  The page's link sits in every email and emails get
    forwarded, so granting consent or changing the person's details needs their mailbox, as
    joining a list does (the lists themselves travel in the link, ``ConfirmRequest``).

    Kept here, not in the link, because the new details are personal data and links are not
    the place for them.  One row per person: a later save that asks for more replaces it (and
    the earlier email's link then confirms its lists only); the click applies it and deletes it;
    unconfirmed rows go with the unconfirmed sign-ups (``do_purge_unconfirmed``)."""

    contact = models.OneToOneField(
        Contact, on_delete=models.CASCADE, related_name="pending_preferences"
    )
    list_ids = models.JSONField(default=list)  # shown on the page; joined by the link's own
    channels = models.JSONField(default=list)  # channels to grant
    tracking = models.BooleanField(default=False)  # grant open and click statistics
    values = models.JSONField(default=dict)  # contact field -> new value
    wording = models.ForeignKey(ConsentWording, on_delete=models.PROTECT, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Pending preferences #{self.pk}"


class ConsentEvent(models.Model):
    """One grant or withdrawal of consent.  Append-only: the ledger is the proof."""

    class Action(models.TextChoices):
        GRANTED = "granted", "Granted"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Source(models.TextChoices):
        FORM = "form", "Sign-up form"
        CONFIRMATION = "confirmation", "Email confirmation"
        PREFERENCES = "preferences", "Preference centre"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"
        IMPORT = "import", "Import"
        API = "api", "API"
        OPERATOR = "operator", "Operator"
        SYSTEM = "system", "System (bounce, complaint, erasure)"

    # Foreign keys without an index of their own (db_index=False), as every index costs each of
    # the ledger's inserts (an import writes one event a contact): the (contact, at) index
    # below serves lookups by contact, and nothing looks events up by list or wording alone.
    # Deleting a list or a wording (PROTECT: refused while events point to it) then scans the
    # ledger to check; that is rare and allowed to be slow.
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="consent_events", null=True, db_index=False
    )
    purpose = models.CharField(max_length=50)
    channel = models.CharField(max_length=20, blank=True)
    # PROTECT: deleting a list would otherwise rewrite ledger rows; lists are closed, not deleted.
    mailing_list = models.ForeignKey(
        MailingList,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    topic = models.CharField(max_length=100, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices)
    at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, choices=Source.choices)
    source_ref = models.CharField(
        max_length=200, blank=True, help_text="Form id, import id, operator id, API token id..."
    )
    wording = models.ForeignKey(
        ConsentWording, on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["contact", "at"])]
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"ConsentEvent #{self.pk} ({self.action} {self.purpose}/{self.channel})"

    def save(self, *args, **kwargs):
        if self.pk is not None or kwargs.get("force_update") or kwargs.get("update_fields"):
            raise TypeError("consent events are append-only: they are never updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("consent events are append-only: they are never deleted")


class Suppression(models.Model):
    """An address that must never be mailed, kept only as an HMAC."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Complaint"
        ERASED = "erased", "Erased on request"
        MANUAL = "manual", "Added by an operator"

    email_hmac = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Suppression #{self.pk} ({self.reason})"


class SuppressedDomain(models.Model):
    domain = models.CharField(max_length=253, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return self.domain


def imports_dir() -> Path:
    """Where uploaded import files and bad-row reports are kept (personal data: mode 0700)."""
    return Path(settings.DATA_DIR) / "imports"


class Import(models.Model):
    """One import of contacts from a CSV file into a list, with its progress and outcome.

    Counts only: the rows themselves are in the contacts they became, and the rows that could not
    be imported are in the bad-rows report (a file for the operator, deleted with this record).
    Consent events written by an import point here with ``source_ref="import:<id>"``, and the
    consent source text stated by the operator is kept both here and as the events' wording.
    """

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking the file"
        READY = "ready", "Checked: waiting for your go-ahead"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    mailing_list = models.ForeignKey(
        MailingList, on_delete=models.SET_NULL, null=True, related_name="imports"
    )
    consent_source = models.TextField(help_text="Where and how these people gave their consent.")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    original_filename = models.CharField(max_length=255, blank=True)
    # File names inside imports_dir(); blank when there is no such file (a CLI import reads the
    # operator's own file in place and never deletes it).
    stored_file = models.CharField(max_length=100, blank=True)
    report_file = models.CharField(max_length=100, blank=True)
    column_map = models.JSONField(
        default=dict,
        blank=True,
        help_text="Operator's overrides: column name → field ('' ignores).",
    )
    dry_run = models.BooleanField(default=False)

    class DateOrder(models.TextChoices):
        # Numeric dates that read either way (03/04/2025): as the file's own dates show, else
        # day first with a note; or as the operator says (--dates, the preview's choice).
        AUTO = "", "As the file's dates show"
        DAY_FIRST = "day-first", "Day first (UK): 03/04 is 3 April"
        MONTH_FIRST = "month-first", "Month first (US): 03/04 is 4 March"

    date_order = models.CharField(
        max_length=12,
        choices=DateOrder.choices,
        blank=True,
        default=DateOrder.AUTO,
        help_text="How numeric consent dates are read: day or month first ('' as the file shows).",
    )
    exporter = models.CharField(
        max_length=20, blank=True, help_text="The tool the file came from (mailchimp...) or csv."
    )
    preview = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the check before the import found (counts, reasons, notes): no values.",
    )

    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=4, blank=True)
    ignored_columns = models.JSONField(
        default=dict, blank=True, help_text="Why → the columns ignored for that reason."
    )
    total_bytes = models.PositiveBigIntegerField(default=0)
    processed_bytes = models.PositiveBigIntegerField(default=0)
    rows_read = models.PositiveBigIntegerField(default=0)
    created = models.PositiveBigIntegerField(default=0, help_text="New contacts.")
    updated = models.PositiveBigIntegerField(
        default=0, help_text="Existing contacts given blank fields or this list's subscription."
    )
    unchanged = models.PositiveBigIntegerField(default=0)
    subscribed = models.PositiveBigIntegerField(
        default=0, help_text="Subscriptions created or confirmed (one consent event each)."
    )
    skipped_suppressed = models.PositiveBigIntegerField(default=0)
    skipped_unsubscribed = models.PositiveBigIntegerField(
        default=0, help_text="People who had left this list: an import never re-subscribes them."
    )
    left_in_file = models.PositiveBigIntegerField(
        default=0,
        help_text="People the file marks as gone (unsubscribed, cleaned, bounced): suppressed.",
    )
    duplicates = models.PositiveBigIntegerField(default=0)
    bad_rows = models.PositiveBigIntegerField(default=0)
    bad_reasons = models.JSONField(
        default=dict, blank=True, help_text="Reason → {count, first_line}."
    )
    error = models.CharField(max_length=500, blank=True)
    notes = models.JSONField(
        default=list,
        blank=True,
        help_text="What the operator should know about the file, one sentence each (no values).",
    )

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # While running: the process that runs it, and when it last said so (every batch).  A running
    # import whose heartbeat is older than the lease, or whose process is gone from this host,
    # was interrupted (imports.lease).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    run_host = models.CharField(max_length=255, blank=True)
    run_pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.status})"

    @property
    def stored_path(self) -> Path | None:
        return imports_dir() / self.stored_file if self.stored_file else None

    @property
    def report_path(self) -> Path | None:
        return imports_dir() / self.report_file if self.report_file else None


@receiver(post_delete, sender=Import)
def _delete_import_files(sender, instance: Import, **kwargs) -> None:
    """The upload and the bad-rows report hold personal data: they go with the record."""
    paths = [p for p in (instance.stored_path, instance.report_path) if p is not None]

    def remove() -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    transaction.on_commit(remove)


class SignupForm(models.Model):
    """A sign-up form an operator built: its lists, which optional fields it offers, its words.

    The fields a form can offer come from the policy's "newsletter" purpose (required ones are
    always asked; ``optional_fields`` picks among the optional ones), so a form can never collect
    more than the policy allows.  Build and change forms with ``audience.actions``.
    """

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True, help_text="The form's address: /f/<slug>")
    lists = models.ManyToManyField(MailingList, related_name="signup_forms")
    optional_fields = models.JSONField(
        default=list, blank=True, help_text="Optional fields of the newsletter purpose to offer."
    )
    channels = models.JSONField(
        default=list,
        blank=True,
        help_text="Other marketing channels (phone, post) to ask consent for, unticked.",
    )
    intro = models.TextField(blank=True)
    consent_wording = models.TextField(
        blank=True, help_text="Shown beside the consent boxes.  Blank: generated from the policy."
    )
    thank_you = models.TextField(blank=True)
    redirect_url = models.URLField(
        blank=True, help_text="Where to send people after they submit (instead of our page)."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "sign-up form"

    def __str__(self) -> str:
        return self.name


class Segment(models.Model):
    """A saved segment: a query in the segment language (see ``audience/segments.py``)."""

    name = models.CharField(max_length=200, unique=True)
    query = models.TextField(help_text='e.g. list:"product news" and attributes.plan = "pro"')
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from .segments import validate_segment

        if not self.query.strip():
            return  # the field's own "cannot be blank" says it
        errors = validate_segment(self.query)
        if errors:
            raise ValidationError({"query": [str(error) for error in errors]})

    def contacts(self) -> models.QuerySet[Contact]:
        """The contacts the segment matches now, each once.  Raises SegmentError."""
        from .segments import segment_queryset

        return segment_queryset(self.query)
