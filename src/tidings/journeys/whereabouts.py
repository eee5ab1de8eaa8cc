"""Where a person in a journey is now: ``Enrolment.step`` is the step to run *next*, which is
not where someone waiting out a "wait 2 days" (or "wait until") step is — that step already
pointed them at the step after it.  The journey map's "here now" (``stats``) and the history
row of someone taken out while there (``actions._close``) both ask ``here``."""

from __future__ import annotations

from django.db.models import Case, F, OuterRef, QuerySet, Subquery, Value, When
from django.utils import timezone

from .models import Enrolment, EnrolmentStep

EXIT_KIND = "exit"  # the kind of the history row of someone taken out (actions._close)
PLAIN_WAITS = ("wait", "wait_until")  # they move ``Enrolment.step`` on as they start waiting


def here(enrolments: QuerySet) -> QuerySet:
    """``enrolments`` annotated with ``here``: the step each person is at now.

    ``Enrolment.step`` is the step to run *next*: someone in a "wait 2 days" (or "wait until")
    step already points at the step after it, so counting by it showed them one box too low.
    They are at the wait while their last step run (a deferral only moves a missed time on) was
    that wait and it has not ended; a due or parked person is at the step they will run."""
    last = (
        EnrolmentStep.objects.filter(enrolment=OuterRef("pk"))
        .exclude(outcome=EnrolmentStep.Outcome.DEFERRED)
        .order_by("-seq")
        .annotate(
            wait=Case(
                When(outcome=EnrolmentStep.Outcome.WAITING, kind__in=PLAIN_WAITS, then=F("step")),
                default=Value(""),
            )
        )
        .values("wait")[:1]
    )
    at = Case(
        When(
            state=Enrolment.State.ACTIVE,
            next_run_at__gt=timezone.now(),
            waited__gt="",
            then=F("waited"),
        ),
        default=F("step"),
    )
    return enrolments.annotate(waited=Subquery(last), here=at)
