"""A/B tests: a campaign's 2–4 variants, and how the test is run and decided.

Each person gets exactly one variant: the variant is written on their ``Delivery`` row when the
queue is populated (``queue.assign_variants``), never chosen at send time, so a worker that
crashes and a row that is claimed again send the same variant.  The people outside the test
share wait in the queue as ``held`` rows until the winner is known; then they are given the
winner and released (``campaigns.abtest``).
"""

from __future__ import annotations

import copy
import secrets
from typing import Any

from django.conf import settings
from django.db import models

from .campaign import Campaign

LABELS = ("A", "B", "C", "D")


def _seed() -> int:
    return secrets.randbelow(2**31)


class ABTest(models.Model):
    class Metric(models.TextChoices):
        CLICKS = "clicks", "Unique human clicks"
        OPENS = "opens", "Unique human opens"
        CLICK_TO_OPEN = "click_to_open", "Click-to-open (human clickers of human openers)"

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="ab_test")
    share = models.PositiveSmallIntegerField(
        default=20,
        help_text="Percent of the audience in the test, split evenly between the variants; the "
        "rest get the winner.  100: everyone is in the test.",
    )
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.CLICKS)
    wait_minutes = models.PositiveIntegerField(
        default=240, help_text="How long after the start the winner is chosen."
    )
    automatic = models.BooleanField(
        default=True,
        help_text="Send the winner to the rest automatically; off: an operator picks it.",
    )
    seed = models.PositiveIntegerField(
        default=_seed, help_text="The random split is reproducible from this number."
    )
    winner = models.ForeignKey(
        "campaigns.Variant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decision = models.CharField(
        max_length=300, blank=True, help_text="Why this winner, in a sentence (no personal data)."
    )

    def __str__(self) -> str:
        return f"A/B test of campaign {self.campaign_id}"


class Variant(models.Model):
    """One version of a campaign.  Blank fields take the campaign's own value."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=1, choices=[(x, x) for x in LABELS])
    subject = models.CharField(max_length=300, blank=True)
    preheader = models.CharField(max_length=300, blank=True)
    sender_name = models.CharField(max_length=200, blank=True, help_text="The From name.")
    body = models.TextField(blank=True, help_text="In the campaign's format.")

    class Meta:
        ordering = ["campaign", "label"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "label"], name="one_variant_per_label"),
        ]

    def __str__(self) -> str:
        return f"Variant {self.label} of campaign {self.campaign_id}"

    def applied_to(self, campaign: Any) -> Any:
        """A copy of ``campaign`` (never saved) as this variant would send it: what rendering
        and the engine compile in place of the campaign."""
        view = copy.copy(campaign)
        if self.subject:
            view.subject = self.subject
        if self.preheader:
            view.preheader = self.preheader
        if self.body.strip():
            # The variant's own body; its plain text is generated from it (the campaign's
            # hand-written text belongs to the campaign's body).
            view.body, view.text_body = self.body, ""
        if self.sender_name and campaign.sender is not None:
            sender = copy.copy(campaign.sender)
            sender.name = self.sender_name
            view.sender = sender
        return view

    def differences(self) -> list[str]:
        return [
            name
            for name in ("subject", "preheader", "sender_name", "body")
            if str(getattr(self, name)).strip()
        ]
