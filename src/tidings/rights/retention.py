"""Retention: when each kind of record expires under the policy, and the sweep that erases it.

One rule, two readings:

- For one record (its page), ``expiry(record)`` evaluates ``Policy.expires_at`` over the record's
  clocks and then applies an extension on request: the later of the two wins, so an extension
  only ever pushes the date out.  ``retention_status(record)`` says it in words.
- For the sweep, ``expired_records(kind, now)`` is a QuerySet of every record of the kind that
  has expired at ``now``.  The rule becomes range conditions on each clock (usually one cutoff:
  "expired" ⇔ the clock started at or before it), so the database finds a million expired rows by
  index and the sweep deletes them in batches of ids; no row is looped over in Python.  The
  ranges are exact: calendar months make "now - 12 months" wrong by up to three days at month
  ends, and after a datetime they do not even keep order within those days (``expired_ranges``).
  tests/rights/test_retention.py checks with hypothesis that the query and
  ``Policy.expires_at`` agree on random clocks, for the example policy and for rules that combine
  clocks of both types.

Periods are counted in UTC (a date clock counts from midnight UTC, as ``Policy.expires_at``
compares them), so a record page and the sweep always give the same answer.

What a sweep erases, per kind: the expired rows (a subscription's address then survives only as a
hashed suppression entry, when the person has no other list left); then every contact that the
batch left with nothing (no subscription, enquiry, order, support role, or any other record that
holds it).  Erasing a contact turns its consent events into anonymous tombstones and leaves its
deliveries' statistics in place (their ``contact`` becomes NULL: counts survive, the person does
not).  Records under a legal minimum are kept for their whole period: they hold their contact.
Each batch is one short transaction (``BATCH_SIZE`` ids), so nothing, the delivery table
included, is locked for long; every real run writes one ``retention.run`` audit entry with counts.
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from functools import reduce
from typing import Any

from django.apps import apps
from django.db import connection, models, transaction
from django.db.models import (
    Case,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.lookups import GreaterThanOrEqual, IsNull, LessThan, LessThanOrEqual
from django.utils import timezone

from tidings.audience.models import Contact, Subscription, Suppression
from tidings.audience.sources import AnyOf, holds_contact
from tidings.audience.suppression import do_suppress
from tidings.campaigns.engagement import CLICKED, OPENED, refresh
from tidings.lib.audit import audit
from tidings.policy import Policy, get_policy
from tidings.policy.durations import Duration, Moment
from tidings.policy.plain import retention_text
from tidings.policy.records import RECORD_KINDS

from .erasure import delete_expired, erase_people_left_with_nothing, set_based_checks

logger = logging.getLogger(__name__)

# Ids per transaction.  Measured on PostgreSQL with bench/retention.py (2 busy cores): batches of
# 2,000 and of 5,000 remove as many rows a second, but a batch of 2,000 commits in ~0.1-0.2 s
# against ~0.3-1.4 s, and that is how long the delivery rows it anonymises stay locked.
BATCH_SIZE = 2000


# --- time -------------------------------------------------------------------------------------
def instant(moment: Moment) -> datetime:
    """A clock value as an aware datetime: a date counts as its midnight UTC (as in the policy)."""
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment, clock_time.min, tzinfo=UTC)


def monotone(duration: Duration | None, *, dated: bool) -> bool:
    """Whether adding ``duration`` keeps clock values in order.

    Dates: always (31 January and 28 February both + 1 month = 28 February, never out of order).
    Datetimes: with days or weeks (exact), or no duration; not with months or years, which move
    the day and keep the time: 28 January 10:00 + 1 month is later than 31 January 09:00 + 1
    month (28 February 10:00 against 09:00).
    """
    return dated or duration is None or duration.unit in ("days", "weeks")


def latest_start(duration: Duration | None, now: datetime, *, dated: bool) -> Moment:
    """The latest clock value whose period has run out at ``now``, when that is one cutoff.

    For a date clock, or a monotone period (see ``monotone``): a clock at or before the result
    has expired, a later one has not.  ``duration`` None is "while ...": expired the moment the
    state ended.  Months are not invertible (31 January + 1 month = 28 February, and so are 28, 29
    and 30 January), so ``today - period`` can be a few days out: the exact day is found by
    stepping from there.
    """
    now = now.astimezone(UTC)
    if not monotone(duration, dated=dated):
        raise ValueError("months or years after a datetime clock have no single cutoff")
    if duration is None:
        return now.date() if dated else now
    if not dated:
        return now - duration.delta  # days and weeks are exact
    today = now.date()
    day = timedelta(days=1)
    start = today - duration.delta
    while start + duration.delta > today:
        start -= day
    while start + day + duration.delta <= today:
        start += day
    return start


@dataclass(frozen=True)
class Ranges:
    """The datetimes whose period (months or years) has run out at a moment: those before
    ``before``, and those within one of ``days`` (low and high included)."""

    before: datetime
    days: tuple[tuple[datetime, datetime], ...]

    def __contains__(self, moment: datetime) -> bool:
        return moment < self.before or any(low <= moment <= high for low, high in self.days)


def expired_ranges(duration: Duration, now: datetime) -> Ranges:
    """Where datetime clocks have expired at ``now`` after a period of months or years.

    Adding months moves the date (clamped to the month's last day) and keeps the time of day.
    So every moment of a day whose date lands before today has expired; of the days that land
    on today (one, or up to four at a month's end: 28 to 31 January all land on 28 February),
    only the moments up to now's time of day; no later day has.
    """
    now = now.astimezone(UTC)
    today = now.date()
    day = timedelta(days=1)
    last = today - duration.delta  # then the last date whose period ends before today
    while last + duration.delta >= today:
        last -= day
    while last + day + duration.delta < today:
        last += day
    time_of_day = now - datetime.combine(today, clock_time.min, tzinfo=UTC)
    days = []
    candidate = last + day
    while candidate + duration.delta == today:
        midnight = datetime.combine(candidate, clock_time.min, tzinfo=UTC)
        days.append((midnight, midnight + time_of_day))
        candidate += day
    return Ranges(datetime.combine(last + day, clock_time.min, tzinfo=UTC), tuple(days))


# --- where each record kind keeps its clocks --------------------------------------------------
@dataclass(frozen=True)
class Clock:
    """One named clock of a record: a field (a path such as ``mailing_list__closed_at``)."""

    field: str
    dated: bool = False  # a DateField (whole days), else an aware DateTimeField

    def expression(self) -> Any:
        return F(self.field)

    def on_or_before(self, cutoff: Moment) -> Q:
        """Records whose clock had started at or before ``cutoff`` (NULL: not started)."""
        return Q(**{f"{self.field}__lte": cutoff})

    def in_ranges(self, ranges: Ranges) -> Q:
        condition = Q(**{f"{self.field}__lt": ranges.before})
        for low, high in ranges.days:
            if low == ranges.before:  # the usual case: one day, right after the others
                condition = Q(**{f"{self.field}__lte": high})
            else:
                condition |= Q(**{f"{self.field}__gte": low, f"{self.field}__lte": high})
        return condition

    def value(self, record: models.Model) -> Moment | None:
        value: Any = record
        for part in self.field.split("__"):
            value = getattr(value, part, None) if value is not None else None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return value


def period_over(clock: Clock, duration: Duration | None, now: datetime) -> Q:
    """Records whose ``clock`` + ``duration`` is at or before ``now`` (a NULL clock: never)."""
    if monotone(duration, dated=clock.dated):
        return clock.on_or_before(latest_start(duration, now, dated=clock.dated))
    assert duration is not None
    return clock.in_ranges(expired_ranges(duration, now))


@dataclass(frozen=True)
class ContractEndClock(Clock):
    """A support contact's "contract_end": when its organisation's last contract ends.

    Decided: the latest end of the organisation's contracts, and only once every one of them has
    an end date (an open-ended contract means the relationship goes on); None while the
    organisation has no contract at all.  A planned end in the future counts as the date it is.
    """

    field: str = "organisation"
    dated: bool = True

    def _contracts(self) -> QuerySet:
        from tidings.crm.models import Contract

        return Contract.objects.filter(organisation=OuterRef("organisation")).order_by()

    def on_or_before(self, cutoff: Moment) -> Q:
        contracts = self._contracts()
        running = contracts.filter(Q(end__isnull=True) | Q(end__gt=cutoff))
        return Q(Exists(contracts)) & ~Q(Exists(running))

    def expression(self) -> Any:
        contracts = self._contracts()
        latest = contracts.values("organisation").annotate(latest=Max("end")).values("latest")
        return Case(
            When(Exists(contracts.filter(end__isnull=True)), then=Value(None)),
            default=Subquery(latest[:1]),
            output_field=models.DateField(),
        )

    def value(self, record: models.Model) -> Moment | None:
        ends = list(record.organisation.contracts.values_list("end", flat=True))  # type: ignore[attr-defined]
        if not ends or any(end is None for end in ends):
            return None
        return max(ends)


@dataclass(frozen=True)
class LastContactClock(Clock):
    """An enquiry's "last_contact": the later of the last time we were in touch and the end of
    its latest booked demo.

    A demo is contact, and one booked further ahead than the rule's period must not lose its
    enquiry (and, by CASCADE, itself) before it takes place: the clock runs from the demo's end.
    A cancelled demo does not count.  Index-friendly: the plain field decides unless the enquiry
    has a booked demo ending after it.
    """

    field: str = "last_contact_at"

    @staticmethod
    def _booked() -> QuerySet:
        """The demos that count: confirmed bookings (booking is a sibling app: by name)."""
        return apps.get_model("booking", "Booking").objects.filter(status="confirmed").order_by()

    def _demos(self) -> QuerySet:
        return self._booked().filter(enquiry=OuterRef("pk"))

    def _later_demos(self) -> QuerySet:
        return self._demos().filter(end__gt=OuterRef(self.field))

    def _latest_demo_end(self) -> Any:
        return Subquery(self._demos().order_by("-end").values("end")[:1])

    def expression(self) -> Any:
        return Case(
            When(Exists(self._later_demos()), then=self._latest_demo_end()),
            default=F(self.field),
            output_field=models.DateTimeField(),
        )

    def on_or_before(self, cutoff: Moment) -> Q:
        return super().on_or_before(cutoff) & ~Q(Exists(self._demos().filter(end__gt=cutoff)))

    def in_ranges(self, ranges: Ranges) -> Q:
        latest = self._latest_demo_end()
        in_ranges = Q(LessThan(latest, ranges.before))
        for low, high in ranges.days:
            in_ranges |= Q(GreaterThanOrEqual(latest, low)) & Q(LessThanOrEqual(latest, high))
        later = Exists(self._later_demos())
        return (super().in_ranges(ranges) & ~Q(later)) | (Q(later) & in_ranges)

    def value(self, record: models.Model) -> Moment | None:
        last = super().value(record)
        ends = self._booked().filter(enquiry_id=record.pk).values_list("end", flat=True)
        moments = [moment for moment in (last, *(end.astimezone(UTC) for end in ends)) if moment]
        return max(moments, key=instant) if moments else None


@dataclass(frozen=True)
class RecordSweep:
    """How the sweep finds and erases the records of one kind."""

    kind: str
    model_label: str | None  # "crm.Enquiry"; None: tidings keeps no such records yet
    clocks: Mapping[str, Clock] = field(default_factory=dict)
    contact_field: str | None = "contact"  # None: the records hold no contact

    @property
    def model(self) -> type[models.Model] | None:
        return apps.get_model(self.model_label) if self.model_label else None

    @property
    def label(self) -> str:
        return RECORD_KINDS[self.kind].label

    @property
    def extendable_model(self) -> bool:
        model = self.model
        return model is not None and any(f.name == "kept_until" for f in model._meta.fields)

    def clock_values(self, record: models.Model) -> dict[str, Moment | None]:
        return {name: clock.value(record) for name, clock in self.clocks.items()}

    def erase(self, ids: list[int], contact_ids: set[int]) -> int:
        """Delete these (expired) records and what depends on them; returns how many of this
        kind went (``erasure.delete_expired``: in SQL, by id)."""
        model = self.model
        assert model is not None  # only kinds with records reach a sweep
        with set_based_checks():
            return delete_expired(model, ids)


class SubscriptionSweep(RecordSweep):
    def erase(self, ids: list[int], contact_ids: set[int]) -> int:
        """Subscriptions end "erase": the row goes, and a person left on no list at all is kept
        only as a hashed suppression entry (reason "unsubscribed"), so that nobody adds them
        again by mistake; a later sign-up of theirs must be confirmed by email."""
        erased = super().erase(ids, contact_ids)
        active = Subscription.objects.filter(
            contact=OuterRef("pk"),
            status__in=[Subscription.Status.PENDING, Subscription.Status.CONFIRMED],
        )
        left = Contact.objects.filter(AnyOf("pk", contact_ids)).exclude(Exists(active))
        for email in left.values_list("email", flat=True):
            do_suppress(email, Suppression.Reason.UNSUBSCRIBED, actor_label="retention")
        return erased


class EmailEventSweep(RecordSweep):
    def erase(self, ids: list[int], contact_ids: set[int]) -> int:
        """Email events go by their own rule; the people's engagement facts (their latest open
        and click, which segments read) are then recomputed from the events they have left."""
        erased = super().erase(ids, contact_ids)
        refresh(contact_ids, (OPENED, CLICKED))
        return erased


SWEEPS: dict[str, RecordSweep] = {
    sweep.kind: sweep
    for sweep in [
        RecordSweep(
            "enquiry",
            "crm.Enquiry",
            {"created": Clock("created_at"), "last_contact": LastContactClock()},
        ),
        SubscriptionSweep(
            "subscription",
            "audience.Subscription",
            {
                "created": Clock("created_at"),
                "confirmed": Clock("confirmed_at"),
                "unsubscribed": Clock("unsubscribed_at"),
                "list_closed": Clock("mailing_list__closed_at"),
            },
        ),
        RecordSweep("order", "crm.Order", {"created": Clock("created_at")}),
        RecordSweep(
            "support_contact",
            "crm.SupportContact",
            {
                "created": Clock("created_at"),
                "contract_end": ContractEndClock(),
                "left_employer": Clock("left_employer", dated=True),
            },
        ),
        EmailEventSweep(
            "email_event",
            "campaigns.Event",
            {"sent": Clock("delivery__sent_at"), "created": Clock("at")},
            contact_field="delivery__contact",
        ),
        # The journeys app replaces this with its own sweep (journeys.stats.EnrolmentSweep),
        # which keeps the journey's counts as anonymous tallies before the rows go.
        RecordSweep(
            "journey_enrolment",
            "journeys.Enrolment",
            {"entered": Clock("entered_at"), "finished": Clock("finished_at")},
        ),
        # Page views hold no person: nothing to look at after them (contact_field None).
        RecordSweep(
            "page_view", "analytics.PageView", {"created": Clock("created")}, contact_field=None
        ),
    ]
}


def sweep_for(record: models.Model) -> RecordSweep:
    label = record._meta.label
    for sweep in SWEEPS.values():
        if sweep.model_label == label:
            return sweep
    raise LookupError(f"{label} is not a record kind with a retention rule")


# --- one record -------------------------------------------------------------------------------
def rule_expiry(record: models.Model, policy: Policy | None = None) -> Moment | None:
    """When the policy's rule alone says the record expires (None while no clock has started)."""
    policy = policy or get_policy()
    sweep = sweep_for(record)
    if sweep.kind not in policy.retention:  # kept, as the retention run keeps them
        return None
    return policy.expires_at(sweep.kind, sweep.clock_values(record))


def expiry(record: models.Model, policy: Policy | None = None) -> Moment | None:
    """When the record expires: the rule's date, or a later ``kept_until`` the person asked for.

    None while none of the rule's clocks has started (an extension does not start one).
    """
    expires = rule_expiry(record, policy)
    kept_until = getattr(record, "kept_until", None)
    if expires is not None and kept_until is not None and instant(kept_until) > instant(expires):
        return kept_until
    return expires


def is_expired(record: models.Model, now: datetime | None = None) -> bool:
    expires = expiry(record)
    return expires is not None and instant(expires) <= (now or timezone.now())


@dataclass(frozen=True)
class RetentionStatus:
    expires_at: Moment | None
    text: str  # one sentence for the record's page
    extendable: bool  # the rule allows "extend on request" (and the record can hold it)
    legal_minimum: bool
    rule: str = ""  # the policy's rule in words: "12 months after our last contact with you"
    extended: bool = False  # the date is a kept_until the person asked for


def _day(moment: Moment) -> str:
    if isinstance(moment, datetime):
        return timezone.localtime(moment).date().isoformat()
    return moment.isoformat()


def retention_status(record: models.Model, *, now: datetime | None = None) -> RetentionStatus:
    """What a record's page says about when it goes.  A support request goes with its support
    contact, so it shows theirs."""
    from tidings.crm.models import SupportRequest

    if isinstance(record, SupportRequest):
        record = record.support_contact
    sweep = sweep_for(record)
    policy = get_policy()
    if sweep.kind not in policy.retention:
        return RetentionStatus(
            None, "The policy has no retention rule for these records: they are kept.", False, False
        )
    rule = policy.retention_for(sweep.kind)
    rule_words = retention_text(policy, sweep.kind)
    extendable = rule.extendable_on_request and sweep.extendable_model
    by_rule = rule_expiry(record, policy)
    kept_until = getattr(record, "kept_until", None)
    extended = (
        by_rule is not None and kept_until is not None and instant(kept_until) > instant(by_rule)
    )
    expires = kept_until if extended else by_rule
    minimum = rule.minimum
    if expires is None:
        text = f"No erasure date yet: kept {rule_words}."
    elif instant(expires) <= (now or timezone.now()):
        text = f"Expired on {_day(expires)}: erased at the next retention run."
    elif extended:
        text = f"Erased on {_day(expires)}, kept longer at the person's request."
    elif minimum:
        text = (
            f"Kept until {_day(expires)}, the legal minimum, and erased then; "
            "an erasure request cannot remove it earlier."
        )
    elif extendable:
        text = f"Erased on {_day(expires)} unless the person asks us to keep it longer."
    else:
        text = f"Erased on {_day(expires)}."
    return RetentionStatus(expires, text, extendable, minimum, rule_words, extended)


# --- every record: the queries ----------------------------------------------------------------
def expired_q(sweep: RecordSweep, policy: Policy, now: datetime) -> Q:
    """The condition "expired at ``now``" for records of ``sweep.kind``, as one Q."""
    rule = policy.retention_for(sweep.kind)
    clocks = []
    for name in rule.clock_names(RECORD_KINDS[sweep.kind]):
        if name not in sweep.clocks:
            raise LookupError(f'{sweep.kind} records have no "{name}" clock in {__name__}.SWEEPS')
        clocks.append(sweep.clocks[name])
    if not clocks:
        return Q(pk__in=[])  # a rule with no clock never ends
    first = rule.combine() == "first"
    over = [period_over(clock, rule.duration, now) for clock in clocks]
    if len(clocks) == 1 or all(monotone(rule.duration, dated=c.dated) for c in clocks):
        # In order after the period as before it: the first clock's period is over as soon as
        # any clock's is, the last one's once every clock's is.
        condition = reduce(operator.or_ if first else operator.and_, over)
    else:
        # Months after datetimes do not keep order, so the rule's clock must be named: expired
        # when one clock is the first (the last) of them and its own period is over.
        terms = []
        for i, clock in enumerate(clocks):
            term = over[i]
            for j, other in enumerate(clocks):
                if i != j and first:
                    term &= Q(IsNull(other.expression(), True)) | Q(
                        GreaterThanOrEqual(other.expression(), clock.expression())
                    )
                elif i != j:
                    term &= Q(LessThanOrEqual(other.expression(), clock.expression()))
            terms.append(term)
        condition = reduce(operator.or_, terms)
        if not first:
            condition &= reduce(operator.and_, [Q(IsNull(c.expression(), False)) for c in clocks])
    if sweep.extendable_model:
        today = now.astimezone(UTC).date()
        condition &= Q(kept_until__isnull=True) | Q(kept_until__lte=today)
    return condition


def expired_records(kind: str, now: datetime | None = None, policy: Policy | None = None):
    """Every record of ``kind`` that has expired at ``now``; None when there is no such model."""
    sweep = SWEEPS[kind]
    model = sweep.model
    if model is None:
        return None
    policy = policy or get_policy()
    return model._base_manager.filter(expired_q(sweep, policy, now or timezone.now()))


# --- the sweep ---
def relaxed_commit() -> None:
    """Let this transaction's commit return before its WAL is flushed to disk (PostgreSQL).

    The sweep can afford it: it is idempotent, so a crash that loses the last batches' commits
    (at most ``wal_writer_delay`` × 3 of them, never a torn one) only leaves records that the next
    run finds expired again and erases.  Measured, waiting for each batch's flush was half of a
    sweep's time.  Scoped to the transaction (``SET LOCAL``): nothing else is affected.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


NO_RECORDS_YET = "no records of this kind yet"
NO_RULE = "the policy has no retention rule for it: nothing is removed"


@dataclass
class KindResult:
    kind: str
    label: str
    count: int = 0  # expired (dry run) or erased
    note: str = ""  # why the kind was skipped


@dataclass
class RetentionRun:
    dry_run: bool
    now: datetime
    kinds: list[KindResult] = field(default_factory=list)
    contacts: int = 0  # contacts left with nothing, erased (or that would be)
    batches: int = 0
    longest_batch: float = 0.0  # seconds: the longest single transaction
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return {k.kind: k.count for k in self.kinds if not k.note}

    def summary(self) -> dict[str, Any]:
        """Counts only, JSON-friendly: for the audit entry and the task's result."""
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "contacts": self.contacts,
            "skipped": {k.kind: k.note for k in self.kinds if k.note},
            "batches": self.batches,
            "longest_batch_ms": round(self.longest_batch * 1000),
            "seconds": round(self.seconds, 3),
        }


def _sweep(
    kind: str,
    sweep: RecordSweep,
    records: QuerySet,
    batch_size: int,
    run: RetentionRun,
    *,
    actor: Any = None,
    actor_label: str = "",
) -> int:
    """Erase ``records`` (the kind's expired rows) a batch per transaction, keyset by id.

    Each batch writes its own "retention.batch" audit entry (counts) in its transaction: a run
    killed midway leaves its committed batches accounted for, though it never reaches its
    "retention.run" entry."""
    erased = 0
    last = 0
    while True:
        started = time.perf_counter()
        with transaction.atomic():
            relaxed_commit()
            columns = ["pk", sweep.contact_field] if sweep.contact_field else ["pk", "pk"]
            rows = list(
                records.filter(pk__gt=last)
                .order_by("pk")
                .select_for_update(of=("self",))
                .values_list(*columns)[:batch_size]
            )
            if not rows:
                break
            last = rows[-1][0]
            contact_ids = (
                {contact_id for _, contact_id in rows if contact_id is not None}
                if sweep.contact_field
                else set()
            )
            # The rows are locked as they are read (a record extended meanwhile waits for the
            # batch, or is seen extended and left alone).
            removed = sweep.erase([pk for pk, _ in rows], contact_ids)
            people = erase_people_left_with_nothing(contact_ids)
            audit(
                "retention.batch",
                actor=actor,
                actor_label=actor_label,
                kind=kind,
                removed=removed,
                contacts=people,
            )
            erased += removed
            run.contacts += people
        elapsed = time.perf_counter() - started
        run.batches += 1
        run.longest_batch = max(run.longest_batch, elapsed)
    return erased


def _would_erase_contacts(expired: list[tuple[RecordSweep, QuerySet]]) -> int:
    if not expired:
        return 0
    referenced = Q()
    expired = [(sweep, records) for sweep, records in expired if sweep.contact_field]
    if not expired:
        return 0
    for sweep, records in expired:
        # EXISTS per contact (by index), not IN over a million ids (see holds_contact).
        of_contact = {str(sweep.contact_field): OuterRef("pk")}  # filtered to those with one
        referenced |= Q(Exists(records.filter(**of_contact)))
    excluding = {records.model: records for _, records in expired}
    return Contact.objects.filter(referenced).exclude(holds_contact(excluding)).count()


def run_retention(
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    actor: Any = None,
    actor_label: str = "system",
) -> RetentionRun:
    """Erase every record whose retention has run out, kind by kind, then the contacts that
    were left with nothing.  ``dry_run``: count what would go and change nothing (no audit entry
    either).  Every real run writes one "retention.run" audit entry with counts per kind."""
    started = time.perf_counter()
    policy = get_policy()
    now = now or timezone.now()
    limit = connection.features.max_query_params  # SQLite's variable limit, None elsewhere
    if limit:
        batch_size = max(1, min(batch_size, limit - 100))
    run = RetentionRun(dry_run=dry_run, now=now)
    expired: list[tuple[RecordSweep, QuerySet]] = []
    for kind, sweep in SWEEPS.items():
        result = KindResult(kind, sweep.label)
        run.kinds.append(result)
        if sweep.model is None:
            result.note = NO_RECORDS_YET
            continue
        if kind not in policy.retention:
            result.note = NO_RULE
            continue
        records = expired_records(kind, now, policy)
        if dry_run:
            result.count = records.count()
            expired.append((sweep, records))
        else:
            result.count = _sweep(
                kind, sweep, records, batch_size, run, actor=actor, actor_label=actor_label
            )
    if dry_run:
        run.contacts = _would_erase_contacts(expired)
    run.seconds = time.perf_counter() - started
    if not dry_run:
        details = run.summary()
        del details["dry_run"]
        audit("retention.run", actor=actor, actor_label=actor_label, **details)
        logger.info("retention run: %s", details)
    return run
