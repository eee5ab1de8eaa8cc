"""Enrolments are personal data: which journeys a person is in, where, and what they were sent.

The access package says it in words ("You are in our "Welcome" series, step 2 of 4, next email
on 9 December 2026").  Erasure anonymises the enrolment: its contact goes; one still open is
closed as "erased" (finished that day, with an exit row in its history at the step it had reached,
so the journey's map counts the exit there and the retention rule "journey_enrolment" after
"finished" applies to it), one already closed keeps how it ended.  It stays only as an anonymous
count in the journey's statistics (its history rows hold step ids, times and outcomes, nothing
that names anyone)."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from tidings.audience.sources import (
    PersonalData,
    model_source,
    plain,
    register,
    time_in_words,
    update_ids,
)

from .models import Enrolment, EnrolmentStep, JourneyMailEvent, SegmentMember
from .steps import index_of, sends
from .whereabouts import EXIT_KIND, here


def describe(enrolment: Enrolment) -> str:
    """One sentence about an enrolment, for the person."""
    journey = enrolment.journey
    steps = enrolment.version.steps
    name = f'our "{journey.name}" series'
    if enrolment.state in Enrolment.OPEN:
        try:
            at = index_of(steps, enrolment.step) + 1
        except KeyError:
            at = len(steps)
        sentence = f"You are in {name}, step {at} of {len(steps)}"
        upcoming = [s for s in steps[at - 1 :] if s.get("kind") == "send_email"]
        if enrolment.next_run_at and upcoming:
            sentence += f", next email on {time_in_words(enrolment.next_run_at)}"
        return sentence + "."
    finished = time_in_words(enrolment.finished_at) if enrolment.finished_at else "earlier"
    why = f" ({enrolment.exit_reason})" if enrolment.exit_reason else ""
    return f"You were in {name} until {finished}: {enrolment.get_state_display().lower()}{why}."


def export_enrolments(contact: Any) -> list[dict[str, Any]]:
    rows = (
        Enrolment.objects.filter(contact=contact)
        .select_related("journey", "version")
        .order_by("entered_at", "pk")
    )
    out = []
    for e in rows:
        sent = e.history.filter(outcome=EnrolmentStep.Outcome.SENT).count()
        out.append(
            plain(
                {
                    "journey": e.journey.name,
                    "in words": describe(e),
                    "state": e.get_state_display(),
                    "entered_at": e.entered_at,
                    "emails_sent": f"{sent} of {len(sends(e.version.steps))}",
                    "next_step_at": e.next_run_at,
                    "finished_at": e.finished_at,
                }
            )
        )
    return out


def export_history(contact: Any) -> list[dict[str, Any]]:
    rows = (
        EnrolmentStep.objects.filter(enrolment__contact=contact)
        .select_related("enrolment__journey")
        .order_by("enrolment__entered_at", "enrolment_id", "seq")
    )
    return [
        plain(
            {
                "journey": r.enrolment.journey.name,
                "step": r.step,
                "what": r.kind.replace("_", " "),
                "when": r.ran_at,
                "outcome": r.get_outcome_display(),
                "reason": r.reason,
            }
        )
        for r in rows
    ]


def export_mail_events(contact: Any) -> list[dict[str, Any]]:
    rows = (
        JourneyMailEvent.objects.filter(step__enrolment__contact=contact)
        .select_related("step__enrolment__journey")
        .order_by("at", "pk")
    )
    return [
        plain(
            {
                "journey": r.step.enrolment.journey.name,
                "email of step": r.step.step,
                "what": "opened" if r.kind == JourneyMailEvent.Kind.OPEN else "clicked a link",
                "when": r.at,
                "by": "a mail proxy or link scanner" if r.machine else "you",
            }
        )
        for r in rows
    ]


def export_segment_members(contact: Any) -> list[dict[str, Any]]:
    rows = (
        SegmentMember.objects.filter(contact=contact)
        .select_related("journey")
        .order_by("since", "pk")
    )
    return [
        plain(
            {
                "journey": r.journey.name,
                "in words": f'You matched the people our "{r.journey.name}" series starts for.',
                "since": r.since,
            }
        )
        for r in rows
    ]


def erase_enrolments(ids: list[int]) -> int:
    """Anonymise these enrolments (erasure): the contact goes from each; the open ones are
    closed as "erased" as ``actions._close`` closes an exit (``seq`` moved on so a worker
    running their step changes nothing, an exit row in the history).

    The moment they are closed at is not the erasure's: the erasure journal keeps the exact
    instant beside the address's hash (``ops.journal``, to re-apply erasures after a restore),
    so an anonymous row carrying that instant could be matched back to the person.  They are
    closed at the start of the erasure's day (UTC), or at the enrolment's own last moment (when
    it entered, its last step) when that was later the same day, so that its history stays in
    order; the retention rule after "finished" then runs out up to a day sooner, never later.
    """
    from datetime import UTC, datetime

    from django.db.models import DateTimeField, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce, Greatest
    from django.utils import timezone

    today = timezone.now().astimezone(UTC)
    day = datetime(today.year, today.month, today.day, tzinfo=UTC)
    # ``here``: someone waiting out a "wait 2 days" leaves at the wait, where the journey's map
    # showed them, not at the step after it (``Enrolment.step``, the one to run next), which
    # they never reached — as anyone else taken out (``actions._close``).
    open_ = list(
        here(Enrolment.objects.filter(pk__in=ids, state__in=Enrolment.OPEN))
        .select_for_update()
        .order_by("pk")
        .values_list("pk", "seq", "here")
    )
    if open_:
        pks = [pk for pk, _, _ in open_]
        last_step = (
            EnrolmentStep.objects.filter(enrolment_id=OuterRef("pk"))
            .order_by("-ran_at")
            .values("ran_at")[:1]
        )
        update_ids(
            Enrolment,
            pks,
            state=Enrolment.State.EXITED,
            exit_reason="erased",
            next_run_at=None,
            leased_by="",
            leased_until=None,
            finished_at=Greatest(
                Value(day, output_field=DateTimeField()),
                F("entered_at"),
                Coalesce(Subquery(last_step), F("entered_at")),
                output_field=DateTimeField(),
            ),
            seq=F("seq") + 1,
        )
        finished: dict[int, datetime] = {
            pk: at or day
            for pk, at in Enrolment.objects.filter(pk__in=pks).values_list("pk", "finished_at")
        }
        EnrolmentStep.objects.bulk_create(
            [
                EnrolmentStep(
                    enrolment_id=pk,
                    seq=seq,
                    step=step,
                    kind=EXIT_KIND,
                    ran_at=finished[pk],
                    outcome=EnrolmentStep.Outcome.EXITED,
                    reason="erased",
                )
                for pk, seq, step in open_
            ]
        )
    return update_ids(Enrolment, ids, contact=None)


def register_sources() -> None:
    register_mergers()
    source = model_source(
        "journeys",
        Enrolment,
        of="contact",
        title="Automated email series (journeys)",
        record_kind=None,
        export=export_enrolments,
        # The rows stay as anonymous counts: no contact, the open ones closed as erased.
        remove=erase_enrolments,
        about=(
            "Which of our automated email series you are in and where: to send you the "
            "next email of a series you signed up for, and only while you agree to it."
        ),
        retention=(
            "While you are in the series, then for the period the policy sets for places in "
            "our automated email series; afterwards only as anonymous counts."
        ),
        order=25,
    )
    register(source)
    # The steps an enrolment took: step ids, times and outcomes, linked only to the enrolment
    # (exported with it, above).  Once the enrolment is anonymous they name no one, and they
    # stay as the journey's anonymous counts.
    register(
        PersonalData(
            name="journey history",
            title="Automated email series: steps taken",
            record_kind=None,
            models=(EnrolmentStep,),
            export=export_history,
            about="The steps of the series above you went through (shown with each series).",
            retention="With the series above; anonymous once that is.",
            order=26,
        )
    )
    # Opens and clicks of journey mail, only for people whose mail is tracked (tracking.py):
    # like the history, linked only to the enrolment and anonymous once it is.
    register(
        PersonalData(
            name="journey mail opens and clicks",
            title="Automated email series: opens and clicks",
            record_kind=None,
            models=(JourneyMailEvent,),
            export=export_mail_events,
            about=(
                "When you opened an email of the series above or clicked one of its links, if "
                "you allow us to see that: to count what is read, and to move you on after a "
                "click."
            ),
            retention="With the series above; anonymous once that is.",
            order=27,
        )
    )
    # Who a segment-started journey's segment matched at its last check (segments.py): kept
    # only while they match; erasure deletes the rows.
    register(
        model_source(
            "journey segment matches",
            SegmentMember,
            of="contact",
            title="Who our automated email series start for",
            record_kind=None,
            order_by=("since", "pk"),
            export=export_segment_members,
            about=(
                "That you match the description of the people an automated series starts for, "
                "so that it starts for you once, when you first match it."
            ),
            retention="While you match it; deleted when you no longer do.",
            order=28,
        )
    )


# --- merging two contacts (tidings.audience.merge) --------------------------------------------
def merge_enrolments(m) -> int:
    """One open enrolment per person and journey: when both are in one journey, the later
    entered is closed ("merged", its history kept) before it moves; every enrolment moves."""
    from django.utils import timezone

    open_ = {
        e.journey_id: e
        for e in Enrolment.objects.filter(contact__in=[m.keep, m.drop], state__in=Enrolment.OPEN)
        .order_by("entered_at", "pk")
        .reverse()
    }  # the earliest entered per journey, as the last written wins
    for e in Enrolment.objects.filter(contact__in=[m.keep, m.drop], state__in=Enrolment.OPEN):
        if open_[e.journey_id].pk != e.pk:
            Enrolment.objects.filter(pk=e.pk).update(
                state=Enrolment.State.EXITED,
                exit_reason="merged",
                finished_at=timezone.now(),
                next_run_at=None,
                leased_by="",
                leased_until=None,
            )
            m.count("enrolments_closed", 1)
    return Enrolment.objects.filter(contact=m.drop).update(contact=m.keep)


def merge_segment_members(m) -> int:
    """Derived rows (who a journey's segment matched): the kept contact's stand; the dropped
    one's move where the kept one has none."""
    mine = SegmentMember.objects.filter(contact=m.keep).values_list("journey_id", flat=True)
    SegmentMember.objects.filter(contact=m.drop, journey_id__in=list(mine)).delete()
    return SegmentMember.objects.filter(contact=m.drop).update(contact=m.keep)


def register_mergers() -> None:
    from tidings.audience.merge import register_merger

    register_merger(Enrolment, "contact", merge_enrolments)
    register_merger(SegmentMember, "contact", merge_segment_members)
