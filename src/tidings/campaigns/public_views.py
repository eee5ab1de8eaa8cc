"""The public archive: sent campaigns an operator chose to show, and an RSS 2.0 feed of them.

Only finished campaigns with ``archive`` set appear.  Each is rendered as the made-up sample
person (``samples.sample_contact``) with inert links, never as anyone it was sent to; the pages
set no cookies of their own and carry no tracking.  The rendering is cached per campaign and
layout version, so a busy archive does not recompile templates on every visit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.syndication.views import Feed
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import Truncator

from tidings.policy import get_policy

from .lifecycle import CampaignNotReady
from .models import Campaign
from .samples import render_sample

PAGE_SIZE = 30
FEED_ITEMS = 20
CACHE_SECONDS = 3600


@dataclass(frozen=True)
class ArchivedCopy:
    campaign_id: int
    subject: str
    preheader: str
    text: str
    html: str
    sent_at: datetime | None


def archived_campaigns():
    """Finished campaigns chosen for the archive, newest first."""
    return (
        Campaign.objects.filter(status=Campaign.Status.FINISHED, archive=True)
        .select_related("layout", "template", "sender")
        .order_by("-finished_at", "-pk")
    )


def archived_copy(campaign: Campaign) -> ArchivedCopy | None:
    """The campaign as the sample person would have received it; None if it no longer renders
    (its layout was changed into something broken since)."""
    layout_version = campaign.layout.updated_at.timestamp() if campaign.layout else 0
    key = f"tidings:archive:{campaign.pk}:{campaign.updated_at.timestamp()}:{layout_version}"
    copy = cache.get(key)
    if copy is None:
        try:
            rendered = render_sample(campaign)
        except CampaignNotReady:
            return None
        copy = ArchivedCopy(
            campaign_id=campaign.pk,
            subject=rendered.subject,
            preheader=rendered.preheader,
            text=rendered.text,
            html=rendered.html,
            sent_at=campaign.finished_at or campaign.started_at,
        )
        cache.set(key, copy, CACHE_SECONDS)
    return copy


def archive_index(request: HttpRequest) -> HttpResponse:
    page = Paginator(archived_campaigns(), PAGE_SIZE).get_page(request.GET.get("page"))
    copies = [c for c in (archived_copy(campaign) for campaign in page) if c is not None]
    return render(request, "campaigns/archive_index.html", {"page": page, "copies": copies})


def archive_campaign(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = archived_campaigns().filter(pk=campaign_id).first()
    copy = archived_copy(campaign) if campaign is not None else None
    if copy is None:
        raise Http404("No such campaign in the archive.")
    return render(request, "campaigns/archive_campaign.html", {"copy": copy})


class ArchiveFeed(Feed):
    """RSS 2.0 of the newest archived campaigns."""

    def title(self) -> str:
        return f"{get_policy().controller.name}: newsletter archive"

    def description(self) -> str:
        return f"Newsletters sent by {get_policy().controller.name}."

    def link(self) -> str:
        return reverse("archive:index")

    def items(self) -> list[ArchivedCopy]:
        copies = (archived_copy(c) for c in archived_campaigns()[:FEED_ITEMS])
        return [c for c in copies if c is not None]

    def item_title(self, item: ArchivedCopy) -> str:
        return item.subject

    def item_description(self, item: ArchivedCopy) -> str:
        return item.preheader or Truncator(item.text).chars(500)

    def item_link(self, item: ArchivedCopy) -> str:
        return reverse("archive:campaign", args=[item.campaign_id])

    def item_pubdate(self, item: ArchivedCopy) -> datetime | None:
        return item.sent_at
