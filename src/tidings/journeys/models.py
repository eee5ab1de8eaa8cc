"""Journeys: a person moves through steps on their own clock (see ``engine`` and ``actions``).

A ``Journey`` is what the operator names and switches on; its steps live in ``JourneyVersion``
rows (a validated JSON list, ``steps.py``), a new one each time a running journey is edited, so
that people finish the version they entered.  An ``Enrolment`` is one person in one journey: the
engine's queue row (``next_run_at``, lease) and its state; ``EnrolmentStep`` is its history.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

# A journey about no marketing topic: service mail under the contract purpose (onboarding).
SERVICE = ""


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    class Trigger(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed on a list of the topic"
        EVENT = "event", "A custom event posted through the API"
        DATE = "date", "A date field comes round"
        ENQUIRY = "enquiry_created", "An enquiry was created"
        DEMO = "demo_booked", "A demo was booked"
        LINK = "link_clicked", "A link clicked in a campaign"
        FORM = "form_submitted", "A sign-up form submitted (and confirmed)"
        SEGMENT = "segment_matched", "A contact starts matching a saved segment"
        MANUAL = "manual", "Enrolled by an operator or the API"

    class Entry(models.TextChoices):
        ONCE = "once", "Once ever"
        ONE_AT_A_TIME = "one_at_a_time", "Once at a time"
        AGAIN_AFTER = "again_after", "Again after N days"

    name = models.CharField(max_length=200, unique=True)
    topic = models.CharField(
        max_length=100, blank=True, help_text="A marketing topic; blank: service messages."
    )
    sender = models.ForeignKey(
        "campaigns.Sender", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices, default=Trigger.MANUAL)
    # confirmed: {"list": id or absent}; event: {"name": ...}; date: {"field": "contract_end",
    # "days": -30} (negative: before); link_clicked: {"campaign": id, "url": address or absent};
    # form_submitted: {"form": id}; segment_matched: {"segment": saved segment id}; date on a
    # yearly attribute: {"field": "attributes.birthday", "days": -7, "yearly": true}.
    trigger_params = models.JSONField(default=dict, blank=True)
    entry = models.CharField(max_length=20, choices=Entry.choices, default=Entry.ONCE)
    entry_days = models.PositiveIntegerField(default=0, help_text="For 'again after N days'.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    version = models.PositiveIntegerField(default=0, help_text="The current version's number.")
    paused_reason = models.CharField(max_length=300, blank=True)
    # Date trigger: the last day whose dates have entered people (days missed while no worker
    # ran are caught up, up to a week: triggers.enrol_by_date).
    dates_through = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Four-eyes sending (journeys.fingerprint): who last changed what it sends (blank: its
    # creator), who asked a second operator to confirm it, and the hash that operator confirmed.
    last_edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmation_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmation_requested_at = models.DateTimeField(null=True, blank=True)
    confirmed_fingerprint = models.CharField(max_length=64, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def shown_paused_reason(self) -> str:
        """The paused reason for pages and the command line (an old one stored cut short is
        completed or marked: ``lib.four_eyes.shown_reason``)."""
        from tidings.lib.four_eyes import shown_reason

        return shown_reason(self.paused_reason)

    @property
    def is_marketing(self) -> bool:
        return self.topic != SERVICE

    @property
    def changed_by_id(self) -> int | None:
        """Who last changed what it sends: its last editor, else its creator."""
        return self.last_edited_by_id or self.created_by_id

    def current(self) -> JourneyVersion | None:
        return self.versions.filter(number=self.version).first()


class JourneyVersion(models.Model):
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    steps = models.JSONField(default=list)  # validated by steps.validate_steps
    goals = models.JSONField(default=list, blank=True)  # [{"name": ..., "event": ...}]
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique")
        ]
        ordering = ["journey", "number"]

    def __str__(self) -> str:
        return f"{self.journey} v{self.number}"


class Enrolment(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "In the journey"
        PARKED = "parked", "Parked after an error"
        COMPLETED = "completed", "Completed"
        CONVERTED = "converted", "Converted (reached a goal)"
        EXITED = "exited", "Exited"

    OPEN = (State.ACTIVE, State.PARKED)

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrolments")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="+")
    # SET_NULL: an erasure anonymises the enrolment (it stays as an anonymous count).
    contact = models.ForeignKey(
        "audience.Contact", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    step = models.CharField(max_length=40, help_text="The id of the step to run next.")
    seq = models.PositiveIntegerField(default=0, help_text="Steps run so far (the history key).")
    next_run_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True, help_text="Never personal data.")
    # A wait_event step armed: the event that moves the person on before its timeout
    # (a wait_click step: actions.CLICK_WAIT).
    waiting_for = models.CharField(max_length=100, blank=True)
    exit_reason = models.CharField(max_length=100, blank=True)
    leased_by = models.CharField(max_length=64, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    entered_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "contact"],
                condition=Q(state__in=["active", "parked"]),
                name="enrolment_one_open",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_run_at", "id"], condition=Q(state="active"), name="enrolment_due"
            ),
            models.Index(fields=["contact", "state"], name="enrolment_contact"),
        ]

    def __str__(self) -> str:
        return f"Enrolment #{self.pk} ({self.state})"


class EnrolmentStep(models.Model):
    """One step an enrolment took.  ``seq`` is unique per enrolment: the row is written in the
    transaction that ran the step, so a step is recorded (and its mail queued) once or not at
    all."""

    class Outcome(models.TextChoices):
        DONE = "done", "Done"
        SENT = "sent", "Mail queued"
        WAITING = "waiting", "Waiting"
        DEFERRED = "deferred", "Missed its time: moved to the next"
        BRANCHED = "branched", "Branched"
        EXITED = "exited", "Exited"
        CONVERTED = "converted", "Converted"
        PARKED = "parked", "Parked after an error"
        COMPLETED = "completed", "Completed"

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="history")
    seq = models.PositiveIntegerField()
    step = models.CharField(max_length=40)
    kind = models.CharField(max_length=20)
    ran_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=300, blank=True, help_text="Never personal data.")
    message = models.ForeignKey(
        "campaigns.OutgoingMessage", on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrolment", "seq"], name="enrolment_step_once")
        ]
        ordering = ["enrolment", "seq"]

    def __str__(self) -> str:
        return f"Step {self.step} of enrolment #{self.enrolment_id} ({self.outcome})"


class JourneyEvent(models.Model):
    """A custom event posted through the API, kept only for its idempotency key (no payload)."""

    key = models.CharField(max_length=200, unique=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"Event #{self.pk}"


class JourneyLink(models.Model):
    """A link of a journey's mail that is tracked: its index in the journey's link table (an index
    never changes once given: tokens already mailed keep pointing at the same address)."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="links")
    index = models.PositiveIntegerField()
    url = models.URLField(max_length=2000)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "index"], name="journey_link_index"),
            models.UniqueConstraint(fields=["journey", "url"], name="journey_link_url"),
        ]

    def __str__(self) -> str:
        return f"Link {self.index} of journey #{self.journey_id}"


class JourneyMailEvent(models.Model):
    """An open or a click of one journey mail (the step that sent it).  Personal data like the
    step itself: it goes with the enrolment, and is anonymous once the person is erased.  Only
    what the counts need: time, kind, link index, person or machine."""

    class Kind(models.TextChoices):
        OPEN = "open", "Open"
        CLICK = "click", "Click"

    step = models.ForeignKey(EnrolmentStep, on_delete=models.CASCADE, related_name="mail_events")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    link = models.PositiveIntegerField(null=True, blank=True)
    machine = models.BooleanField(default=False)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["step", "kind"], name="journey_mail_event_step")]

    def __str__(self) -> str:
        return f"Journey mail event #{self.pk} ({self.kind})"


class SegmentWatch(models.Model):
    """Where a ``segment_matched`` journey's checks have got to (``segments.check_segments``):
    the watermark of the last incremental check and the time and query of the last full diff."""

    journey = models.OneToOneField(Journey, on_delete=models.CASCADE, related_name="segment_watch")
    segment = models.ForeignKey(
        "audience.Segment", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    query = models.TextField(blank=True, help_text="The segment's query at the last full diff.")
    checked_at = models.DateTimeField(null=True, blank=True)
    full_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Segment watch of journey #{self.journey_id}"


class SegmentMember(models.Model):
    """A person the journey's segment matched at its last check: who is "already in", so that
    only people who newly match are enrolled.  Personal data (which segment a person is in);
    it goes with the person (CASCADE) and when they stop matching, and never keeps a person the
    retention sweep would otherwise erase."""

    HOLDS_CONTACT = False  # audience.sources.holding_relations

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="segment_members")
    contact = models.ForeignKey("audience.Contact", on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "contact"], name="segment_member_once")
        ]
        indexes = [models.Index(fields=["contact"], name="segment_member_contact")]

    def __str__(self) -> str:
        return f"Segment member #{self.pk} of journey #{self.journey_id}"


class JourneyTally(models.Model):
    """An anonymous count kept for a journey's page once the rows it counted are gone (the
    retention sweep deletes expired enrolments and their history: ``stats.EnrolmentSweep``).
    ``key`` names what is counted, as ``stats`` reads it: "state:completed",
    "step:hello:sent", "exit:unsubscribed"."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="tallies")
    key = models.CharField(max_length=200)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["journey", "key"], name="journey_tally_key")]

    def __str__(self) -> str:
        return f"Tally {self.key} of journey #{self.journey_id}"
