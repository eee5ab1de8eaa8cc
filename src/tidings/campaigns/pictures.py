"""Which templates, layouts and unsent campaigns still show a media library picture: the
campaigns' finder for ``media.usage`` (a picture they show cannot be deleted)."""

from __future__ import annotations

from django.db.models import Q

from .models import Campaign, Layout, Template

# Campaigns whose mail is still to be made: their pictures must still be there when it is.
UNSENT = (
    Campaign.Status.DRAFT,
    Campaign.Status.SCHEDULED,
    Campaign.Status.SENDING,
    Campaign.Status.PAUSED,
)


def picture_uses(key: str) -> list[str]:
    """Where the picture stored under ``key`` (its address holds ``/media/<key>/``) is used."""
    address = f"/media/{key}/"
    uses = [
        f"the layout “{name}”"
        for name in Layout.objects.filter(html__contains=address).values_list("name", flat=True)
    ]
    uses += [
        f"the template “{name}”"
        for name in Template.objects.filter(body__contains=address).values_list("name", flat=True)
    ]
    campaigns = (
        Campaign.objects.filter(status__in=UNSENT)
        .filter(Q(body__contains=address) | Q(variants__body__contains=address))
        .distinct()
        .order_by("name")
    )
    labels = dict(Campaign.Status.choices)
    uses += [
        f"the {labels[status].lower()} campaign “{name}”"
        for name, status in campaigns.values_list("name", "status")
    ]
    return uses
