from __future__ import annotations

from datetime import date, timedelta
from typing import cast

from django import forms
from django.utils import timezone

MAX_RANGE_DAYS = 800  # a little more than the 25 months page views are kept: rollups stay


class RangeForm(forms.Form):
    """The dashboard's date range (inclusive) and site.  Defaults: the last 30 days."""

    start = forms.DateField(label="From", required=False, widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput({"type": "date"}))
    site = forms.ChoiceField(label="Site", required=False)

    def __init__(self, data, *, sites: list[str]):
        super().__init__(data)
        cast(forms.ChoiceField, self.fields["site"]).choices = [("", "All sites")] + [
            (s, s) for s in sites
        ]

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        end: date = data.get("end") or today
        start: date = data.get("start") or end - timedelta(days=29)
        if start > end:
            raise forms.ValidationError("“From” must be on or before “To”.")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise forms.ValidationError(f"Choose a range of at most {MAX_RANGE_DAYS} days.")
        data["start"], data["end"] = start, end
        return data
