"""Reading a campaign's queue, and putting its failed rows back."""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet

from ..models import Campaign, Delivery

QUEUED = Delivery.Status.QUEUED
SENDING = Delivery.Status.SENDING
HELD = Delivery.Status.HELD
FAILED = Delivery.Status.FAILED
FINAL = (Delivery.Status.SENT, FAILED, Delivery.Status.SKIPPED)


def _pk(campaign: Campaign | int) -> int:
    return campaign.pk if isinstance(campaign, Campaign) else campaign


def delivery_counts(campaign: Campaign | int) -> dict[str, int]:
    """How many of the campaign's rows are in each state (every state present, 0 if none)."""
    counts = dict.fromkeys(Delivery.Status.values, 0)
    rows = (
        Delivery.objects.filter(campaign_id=_pk(campaign))
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts.update(dict(rows))
    return counts


def untracked_count(campaign: Campaign | int) -> int:
    """How many of the campaign's messages were sent without tracking (the person had refused
    it, or nothing is tracked): counted through the partial index ``delivery_untracked``."""
    return Delivery.objects.filter(campaign_id=_pk(campaign), tracked=False).count()


def failed_deliveries(campaign: Campaign | int) -> QuerySet[Delivery]:
    """The campaign's failed rows, newest attempt first (for the operator's list)."""
    return Delivery.objects.filter(campaign_id=_pk(campaign), status=FAILED).order_by("-pk")


def unfinished_rows(outer_campaign: str = "pk") -> QuerySet[Delivery]:
    """The rows still queued, sending or held (an A/B test's rest, a later local hour) of the
    campaign ``OuterRef(outer_campaign)`` names (for ``Exists`` in a Campaign query: "is it
    finished?")."""
    return Delivery.objects.filter(
        campaign_id=OuterRef(outer_campaign), status__in=(QUEUED, SENDING, HELD)
    )


def retry_failed(campaign: Campaign | int) -> int:
    """Put the campaign's failed rows back in the queue with fresh attempts; returns how many.

    Only the rows: the campaign's status is the lifecycle's business (``do_retry_failed`` moves a
    finished campaign back to sending).  Rows whose address has been suppressed since (a hard
    bounce) are skipped at send time, not sent.
    """
    return Delivery.objects.filter(campaign_id=_pk(campaign), status=FAILED).update(
        status=QUEUED,
        attempts=0,
        next_attempt_at=None,
        error="",
        error_code=None,
    )
