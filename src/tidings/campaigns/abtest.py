"""A/B tests: set them up, measure each variant, choose the winner, send it to the rest.

A test (``models.ABTest``) splits ``share`` percent of the audience evenly between 2–4 variants
when the campaign starts (``queue.assign_variants``: at random, reproducibly from the test's
seed; each person's variant is fixed on their queue row).  The rest wait as ``held`` rows.  After
``wait_minutes`` the winner is chosen by the metric — unique *human* clicks, unique *human*
opens, or click-to-open — counting people, never the machine opens that privacy proxies fake
(``Event.machine``), nor anyone who has since withdrawn consent to tracking: automatically
(``decide_due_tests``, every minute in the worker), or by an operator (``do_pick_winner``).
The rest are then given the winner and released to the queue.

Figures and their uncertainty (``variant_results``, ``compare``): each variant's rate with a 95%
Wilson score interval, and a two-proportion z-test of the leader against each other variant
(Bonferroni-corrected when there are more than two).  The z-test is a normal approximation that
holds only when every cell of the 2×2 table expects at least 5 people; below that (3 of 3
against 0 of 3 gives p = 0.014 by z, 0.1 in truth) Fisher's exact test is used instead
(``proportions_p_value``).  All are closed forms (``math.erfc``, ``math.comb``), written here
rather than pulling scipy or statsmodels in; the tests pin their values to scipy's.  The report
says plainly when the difference is not significant, and when variants are level; an automatic
test then still sends the leader (the first of the level ones), and says so.

Cancelling the campaign mid-test cancels the rest with it (``lifecycle.do_cancel`` skips held
rows).  The figures at the moment of the decision are kept on the test (``ABTest.decision`` and
the audit entry), since after it the rest's messages count towards the winner.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.tasks import task
from django.utils import timezone

from tidings.lib.audit import audit

from .lifecycle import CampaignError, CampaignNotReady, Problem, transition
from .models import ABTest, Campaign, Delivery, Event, EventKind, Variant
from .models.variants import LABELS
from .queue import release_held
from .variants import MAX_VARIANTS, MIN_VARIANTS

logger = logging.getLogger(__name__)

Z_95 = 1.959963984540054  # the two-sided 95% quantile of the standard normal distribution
ALPHA = 0.05
VARIANT_FIELDS = ("subject", "preheader", "sender_name", "body")


# --- setting a test up -------------------------------------------------------------------------
@transaction.atomic
def do_set_ab_test(
    campaign: Campaign,
    variants: Iterable[Mapping[str, str]],
    *,
    share: int,
    metric: str,
    wait_minutes: int,
    automatic: bool,
    actor: Any,
) -> ABTest:
    """Make the draft an A/B test of ``variants`` (dicts of subject, preheader, sender_name,
    body; blank: the campaign's), replacing any it had.  Raises CampaignNotReady."""
    transition(_status(campaign), "edit")
    variants = [dict(v) for v in variants]
    problems = []
    if not MIN_VARIANTS <= len(variants) <= MAX_VARIANTS:
        problems.append(
            Problem(
                f"give {MIN_VARIANTS} to {MAX_VARIANTS} variants, not {len(variants)}", "variants"
            )
        )
    if not 1 <= share <= 100:
        problems.append(Problem("the test share is a percentage from 1 to 100", "share"))
    if metric not in ABTest.Metric.values:
        problems.append(Problem(f"choose a metric: {', '.join(ABTest.Metric.values)}", "metric"))
    if not 1 <= wait_minutes <= 60 * 24 * 14:
        problems.append(Problem("wait between 1 minute and 14 days", "wait_minutes"))
    unknown = {k for v in variants for k in v} - set(VARIANT_FIELDS)
    if unknown:
        raise ValueError(f"not variant fields: {', '.join(sorted(unknown))}")
    if problems:
        raise CampaignNotReady(problems)
    test, _ = ABTest.objects.update_or_create(
        campaign=campaign,
        defaults={
            "share": share,
            "metric": metric,
            "wait_minutes": wait_minutes,
            "automatic": automatic,
        },
    )
    Variant.objects.filter(campaign=campaign).delete()
    Variant.objects.bulk_create(
        Variant(
            campaign=campaign, label=label, **{k: (v.get(k) or "").strip() for k in VARIANT_FIELDS}
        )
        for label, v in zip(LABELS, variants, strict=False)
    )
    audit(
        "campaign.ab_test_set",
        actor=actor,
        obj=campaign,
        variants=len(variants),
        share=share,
        metric=metric,
        wait_minutes=wait_minutes,
        automatic=automatic,
        fields=sorted({k for v in variants for k, value in v.items() if str(value).strip()}),
    )
    return test


@transaction.atomic
def do_remove_ab_test(campaign: Campaign, *, actor: Any) -> None:
    transition(_status(campaign), "edit")
    Variant.objects.filter(campaign=campaign).delete()
    deleted, _ = ABTest.objects.filter(campaign=campaign).delete()
    if deleted:
        audit("campaign.ab_test_removed", actor=actor, obj=campaign)


def _status(campaign: Campaign) -> str | None:
    return Campaign.objects.filter(pk=campaign.pk).values_list("status", flat=True).first()


# --- measuring ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class VariantResult:
    variant_id: int
    label: str
    sent: int
    openers: int  # people (not machines) who opened, or clicked (a click implies an open)
    clickers: int
    successes: int  # by the test's metric
    trials: int
    rate: float
    low: float  # 95% Wilson interval
    high: float
    # Opened only by a machine (Apple Mail Privacy Protection, an image proxy, a scanner): whether
    # the person read it cannot be seen; counted as not opened, shown apart.
    machine_only: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "sent": self.sent,
            "openers": self.openers,
            "clickers": self.clickers,
            "rate": round(self.rate, 5),
            "low": round(self.low, 5),
            "high": round(self.high, 5),
            "machine_only": self.machine_only,
        }


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (closed form; exact enough for reports)."""
    if trials <= 0:
        return 0.0, 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when it cannot be computed)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return math.erfc(abs(z) / math.sqrt(2))


def fisher_exact_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test of the 2×2 table (x1 of n1, x2 of n2): the
    probability, with the margins fixed, of a table no more likely than this one (scipy's
    ``fisher_exact``).  Exact integers: the tables' weights are binomial coefficients."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    k = x1 + x2

    def weight(x: int) -> int:
        return math.comb(n1, x) * math.comb(n2, k - x)

    observed = weight(x1)
    support = range(max(0, k - n2), min(k, n1) + 1)
    extreme = sum(w for w in map(weight, support) if w <= observed)
    return min(1.0, extreme / math.comb(n1 + n2, k))


SMALL_EXPECTED = 5  # the z-test's usual condition: every cell expects at least this many


def proportions_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """The two-proportion z-test's p-value, or Fisher's exact test's when a cell of the table
    expects fewer than 5 people (the normal approximation then claims too much)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    total, k = n1 + n2, x1 + x2
    smallest = min(n1, n2) * min(k, total - k) / total
    if smallest < SMALL_EXPECTED and total <= 100_000:
        return fisher_exact_p_value(x1, n1, x2, n2)
    return two_proportion_p_value(x1, n1, x2, n2)


def variant_results(campaign: Campaign, metric: str) -> list[VariantResult]:
    """Each variant's figures now: sent, human openers and clickers, the metric's rate and its
    interval, and the messages opened only by machines.  Five grouped queries, whatever the
    campaign's size."""
    variants = list(campaign.variants.order_by("label"))
    # People who have since taken back their consent to tracking: their opens and clicks are
    # no longer used (nor recorded: events.py drops them), so they are left out of both sides
    # of every rate rather than counted as people who did not open.
    withdrawn = tracking_withdrawn(campaign)
    sent, tracked = {}, {}
    for variant_id, n, n_tracked in (
        Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT)
        .exclude(contact_id__in=withdrawn)
        .values_list("variant_id")
        .annotate(n=Count("pk"), tracked=Count("pk", filter=Q(tracked=True) | Q(tracked=None)))
        .order_by()
    ):
        sent[variant_id], tracked[variant_id] = n, n_tracked
    human = Event.objects.filter(
        campaign=campaign, machine=False, kind__in=(EventKind.OPEN, EventKind.CLICK)
    ).exclude(delivery__contact_id__in=withdrawn)
    engaged = dict(
        human.values_list("delivery__variant_id")
        .annotate(n=Count("delivery_id", distinct=True))
        .order_by()
    )
    clicked = dict(
        human.filter(kind=EventKind.CLICK)
        .values_list("delivery__variant_id")
        .annotate(n=Count("delivery_id", distinct=True))
        .order_by()
    )
    machine_only = dict(
        Event.objects.filter(campaign=campaign, machine=True, kind=EventKind.OPEN)
        .exclude(delivery__contact_id__in=withdrawn)
        .exclude(delivery_id__in=human.values("delivery_id"))
        .values_list("delivery__variant_id")
        .annotate(n=Count("delivery_id", distinct=True))
        .order_by()
    )
    results = []
    for variant in variants:
        n_sent = sent.get(variant.pk, 0)
        # Opens and clicks are seen only in tracked messages: the rates are of those.
        n_tracked = tracked.get(variant.pk, 0)
        openers, clickers = engaged.get(variant.pk, 0), clicked.get(variant.pk, 0)
        if metric == ABTest.Metric.OPENS:
            successes, trials = openers, n_tracked
        elif metric == ABTest.Metric.CLICK_TO_OPEN:
            successes, trials = clickers, openers
        else:
            successes, trials = clickers, n_tracked
        low, high = wilson_interval(successes, trials)
        results.append(
            VariantResult(
                variant.pk,
                variant.label,
                n_sent,
                openers,
                clickers,
                successes,
                trials,
                successes / trials if trials else 0.0,
                low,
                high,
                machine_only.get(variant.pk, 0),
            )
        )
    return results


def tracking_withdrawn(campaign: Campaign) -> list[int]:
    """The campaign's recipients whose standing on tracking now forbids it (they withdrew, or
    the policy asks for a grant they no longer hold).  Only people with a tracking entry in
    the consent ledger can have changed their mind, so only they are looked at (a few, not the
    whole audience).  With tracking switched off in the policy nobody is singled out: no
    events are recorded for anyone."""
    from tidings.audience.consent import PURPOSE_TRACKING, tracked_contact_ids, tracking_enabled
    from tidings.audience.models import ConsentEvent

    if not tracking_enabled():
        return []
    recipients = Delivery.objects.filter(campaign=campaign, contact_id__isnull=False)
    asked = set(
        ConsentEvent.objects.filter(
            purpose=PURPOSE_TRACKING, contact_id__in=recipients.values("contact_id")
        ).values_list("contact_id", flat=True)
    )
    return sorted(asked - tracked_contact_ids(asked))


@dataclass(frozen=True)
class Comparison:
    leader: VariantResult | None
    significant: bool
    p_values: dict[str, float]  # other variant's label → p-value against the leader
    sentence: str


def compare(results: list[VariantResult], metric_label: str) -> Comparison:
    """Which variant leads, and whether it leads every other one significantly (two-proportion
    z-test at 5%, Bonferroni-corrected for several comparisons)."""
    if not results:
        return Comparison(None, False, {}, "There are no variants.")
    leader = max(results, key=lambda r: (r.rate, -ord(r.label)))
    others = [r for r in results if r is not leader]
    p_values = {
        r.label: proportions_p_value(leader.successes, leader.trials, r.successes, r.trials)
        for r in others
    }
    threshold = ALPHA / max(1, len(others))
    # Several comparisons at once: each must be below 5% shared out (Bonferroni), say so.
    bar = (
        f"; with {len(others)} comparisons it must be below {threshold:.3f}"
        if len(others) > 1
        else ""
    )
    significant = (
        bool(others)
        and leader.successes > 0
        and all(
            p < threshold and leader.rate > r.rate
            for r, p in zip(others, p_values.values(), strict=True)
        )
    )
    if leader.trials == 0 or leader.successes == 0:
        sentence = (
            f"No variant has any {metric_label.lower()}: there is nothing to choose by, so no "
            f"variant is better; variant {leader.label} is taken as the first of them."
        )
    elif level := [r.label for r in others if r.rate == leader.rate]:
        names = ", ".join([leader.label, *level[:-1]]) + f" and {level[-1]}"
        sentence = (
            f"Variants {names} are level ({leader.rate:.1%} {metric_label.lower()}): there is "
            f"no difference to choose by; variant {leader.label} is taken as the first of them."
        )
    elif significant:
        sentence = (
            f"Variant {leader.label} is better ({leader.rate:.1%} {metric_label.lower()}); the "
            f"difference is significant ({_p(max(p_values.values()))}{bar})."
        )
    else:
        worst_p = max(p_values.values(), default=1.0)
        sentence = (
            f"Variant {leader.label} leads ({leader.rate:.1%} {metric_label.lower()}), but the "
            f"difference is not significant ({_p(worst_p, 2)}{bar}): it may be chance."
        )
    return Comparison(leader, significant, p_values, sentence)


def _p(value: float, digits: int = 3) -> str:
    """A p-value as a sentence shows it: never "p = 0.000", which would claim certainty."""
    floor = 10**-digits
    return f"p < {floor:.{digits}f}" if value < floor else f"p = {value:.{digits}f}"


# --- deciding -----------------------------------------------------------------------------------
class DecisionError(CampaignError):
    """The test cannot be decided (decided already, or its campaign is not sending)."""


# Test rows that have not gone out yet: held until a local hour, queued (a throttled transport, a
# retry later, a paused campaign) or being sent.
WAITING = (Delivery.Status.HELD, Delivery.Status.QUEUED, Delivery.Status.SENDING)


def test_ends_at(test: ABTest) -> datetime | None:
    """When the waiting time ends: ``wait_minutes`` after the test group's last message went
    out (the campaign's start at the earliest).  None before the start and while a test message
    is still waiting to go — held until a local hour, throttled, or to be retried — so a winner
    is never chosen before the people it is chosen on had the mail."""
    started = test.campaign.started_at
    if started is None:
        return None
    tested = Delivery.objects.filter(campaign_id=test.campaign_id, variant__isnull=False)
    if test.decided_at is None and tested.filter(status__in=WAITING).exists():
        return None
    last = tested.aggregate(last=Max("sent_at"))["last"] if test.decided_at is None else None
    return max(started, last or started) + timedelta(minutes=test.wait_minutes)


@transaction.atomic
def _decide(test: ABTest, variant: Variant, *, actor: Any, note: str) -> int:
    """Record the winner and release the rest with it; returns how many rows were released."""
    test = ABTest.objects.select_for_update().select_related("campaign").get(pk=test.pk)
    if test.decided_at is not None:
        raise DecisionError("the winner of this test has been chosen already")
    campaign = test.campaign
    if campaign.status not in (Campaign.Status.SENDING, Campaign.Status.PAUSED):
        raise DecisionError(f"a {campaign.status} campaign's test cannot be decided")
    results = variant_results(campaign, test.metric)
    test.winner = variant
    test.decided_at = timezone.now()
    test.decided_by = actor if getattr(actor, "pk", None) else None
    test.decision = note[:300]
    test.save(update_fields=["winner", "decided_at", "decided_by", "decision"])
    released = release_held(campaign, variant_id=variant.pk)
    audit(
        "campaign.ab_winner",
        actor=actor,
        actor_label="" if actor is not None else "worker",
        obj=campaign,
        winner=variant.label,
        automatic=actor is None,
        released=released,
        figures=[r.as_json() for r in results],
    )
    return released


def do_pick_winner(campaign: Campaign, variant: Variant, *, actor: Any) -> int:
    """An operator picks the winner (any time after the start, before a decision)."""
    if variant.campaign_id != campaign.pk:
        raise ValueError("the variant belongs to another campaign")
    test = ABTest.objects.get(campaign=campaign)
    metric = ABTest.Metric(test.metric).label
    comparison = compare(variant_results(campaign, test.metric), metric)
    return _decide(
        test,
        variant,
        actor=actor,
        note=f"Picked by an operator. {comparison.sentence}",
    )


def decide_due_tests(now: datetime | None = None) -> list[int]:
    """Choose the winner of every automatic test whose waiting time is over; returns the
    campaign ids decided.  Safe in several workers (``_decide`` locks the test)."""
    now = now or timezone.now()
    decided = []
    due = ABTest.objects.filter(
        decided_at__isnull=True,
        automatic=True,
        campaign__status__in=(Campaign.Status.SENDING, Campaign.Status.PAUSED),
        campaign__started_at__isnull=False,
    ).select_related("campaign")
    for test in due:
        ends_at = test_ends_at(test)
        if ends_at is None or ends_at > now:
            continue
        metric = ABTest.Metric(test.metric).label
        comparison = compare(variant_results(test.campaign, test.metric), metric)
        winner = Variant.objects.get(pk=comparison.leader.variant_id) if comparison.leader else None
        if winner is None:
            continue
        try:
            _decide(test, winner, actor=None, note=f"Chosen automatically. {comparison.sentence}")
        except DecisionError:
            continue
        decided.append(test.campaign_id)
        logger.info("A/B test of campaign %s decided: variant %s", test.campaign_id, winner.label)
    return decided


@task()
def decide_due_tests_task() -> list[int]:
    """The periodic job (every minute, see apps.py)."""
    return decide_due_tests()
