"""Website statistics that identify nobody, and the anonymous proof of cookie choices.

``PageView``: one visit to one page.  It holds no person: no IP address, no user agent string, no
cookie or id; the only thing that relates two page views is ``visitor``, a truncated hash of
(that day's random salt, site, IP address, user agent), and the salt is deleted when its day ends
(``salts.py``), after which nobody, us included, can recompute it.  So a visitor can be counted
once within a day, never recognised across days.

``DailyRollup``: the dashboard's source, one row per (day, site, dimension, value), plus the same
summed per month (so a range of two years reads 25 rows per value, not 760); kept when the page
views are swept (they hold no person either).

``ConsentRecord``: what a visitor chose in the cookie banner, which banner (hash of its texts)
and when.  No IP address, no id, no cookie value: proof that the banner asked and what the
answers were, not whose they were.
"""

from __future__ import annotations

from django.db import models


class Salt(models.Model):
    """The random salt of one day (the controller's, TIDINGS_TIME_ZONE).  Deleted once the day
    is over."""

    day = models.DateField(unique=True)
    value = models.BinaryField(max_length=32)

    def __str__(self) -> str:
        return f"salt of {self.day}"


class PageView(models.Model):
    created = models.DateTimeField(db_index=True)
    site = models.CharField(max_length=253)  # the host name of the page
    path = models.CharField(max_length=500)  # without the query string
    utm_source = models.CharField(max_length=100, blank=True)
    utm_medium = models.CharField(max_length=100, blank=True)
    utm_campaign = models.CharField(max_length=100, blank=True)
    utm_term = models.CharField(max_length=100, blank=True)
    utm_content = models.CharField(max_length=100, blank=True)
    referrer = models.CharField(max_length=253, blank=True)  # the referring host name only
    browser = models.CharField(max_length=50, blank=True)  # "Firefox"
    browser_version = models.CharField(max_length=10, blank=True)  # major only: "128"
    os = models.CharField(max_length=50, blank=True)  # "Windows"
    device = models.CharField(max_length=10, blank=True)  # desktop | mobile | tablet
    visitor = models.CharField(max_length=16, blank=True)  # see the module docstring

    def __str__(self) -> str:
        return f"{self.site}{self.path} at {self.created:%Y-%m-%d %H:%M}"


class DailyRollup(models.Model):
    class Dimension(models.TextChoices):
        TOTAL = "total", "All pages"
        PAGE = "page", "Pages"
        REFERRER = "referrer", "Referrers"
        BROWSER = "browser", "Browsers"
        OS = "os", "Operating systems"
        DEVICE = "device", "Devices"
        CAMPAIGN = "campaign", "Campaigns (utm_campaign)"
        SOURCE = "source", "Sources (utm_source)"

    class Period(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"  # ``day`` is the 1st; sums of the month's daily rows

    period = models.CharField(max_length=5, choices=Period.choices, default=Period.DAY)
    day = models.DateField()
    site = models.CharField(max_length=253)
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    value = models.CharField(max_length=500, blank=True)
    views = models.PositiveIntegerField()
    visitors = models.PositiveIntegerField()  # distinct visitor hashes that day

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dimension", "period", "day", "site", "value"],
                name="analytics_rollup_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.site} {self.dimension}={self.value}: {self.views}"


class ConsentRecord(models.Model):
    at = models.DateTimeField(db_index=True)
    banner_version = models.CharField(max_length=64)  # SHA-256 of the banner's texts
    choice = models.JSONField()  # {"analytics": true, ...}: every purpose the banner asked about
    how = models.CharField(max_length=10)  # accept | reject | choose

    def __str__(self) -> str:
        return f"consent record {self.pk} at {self.at:%Y-%m-%d %H:%M}"


class BannerText(models.Model):
    """What a version of the cookie banner said, kept from the first time it was shown: a
    ``ConsentRecord`` names its banner by this version, and the proof needs the words too (the
    policy, and so the banner, may have changed since)."""

    version = models.CharField(max_length=64, primary_key=True)  # SHA-256 of ``texts``
    texts = models.JSONField()
    first_shown_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"cookie banner {self.version[:12]}"
