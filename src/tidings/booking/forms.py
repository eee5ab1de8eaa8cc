"""Forms of demo booking: the public booking form and the operator's availability settings.

The booking form asks exactly the enquiry purpose's fields (it is the contact form's
``PublicEnquiryForm``, honeypot included, without the message), a slot, and, when a sign-up
form is chosen in the settings, an unticked newsletter box.
"""

from __future__ import annotations

import zoneinfo
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.contrib.auth import get_user_model

from tidings.audience.forms import consent_wording
from tidings.audience.models import SignupForm
from tidings.crm.forms import PublicEnquiryForm
from tidings.policy import get_policy

from .models import WEEKDAYS, Availability
from .slots import Slot, format_windows, parse_key, parse_windows


def _tz_file(name: str) -> str:
    """A table of the IANA time zone database, from where ``zoneinfo`` reads the zones: the
    system's (``zoneinfo.TZPATH``), else the ``tzdata`` package's.  Empty when neither has it."""
    for base in zoneinfo.TZPATH:
        try:
            return Path(base, name).read_text(encoding="utf-8")
        except OSError:
            continue
    try:
        return resources.files("tzdata.zoneinfo").joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return ""


# Old spellings whose link in ``tzdata.zi`` points at another country's zone with the same clock
# (``Africa/Asmera`` → ``Africa/Nairobi``, Kenya), where the tz database's own ``backward`` file
# names the renamed zone (``#= Africa/Asmara``, Eritrea).  ``backward`` is not shipped with the
# compiled data, so its few such renames are written here.
RENAMED = {
    "Africa/Asmera": "Africa/Asmara",
    "Africa/Timbuktu": "Africa/Bamako",
    "America/Virgin": "America/St_Thomas",
    "Antarctica/South_Pole": "Antarctica/McMurdo",
    "Pacific/Ponape": "Pacific/Pohnpei",
    "Pacific/Truk": "Pacific/Chuuk",
    "Pacific/Yap": "Pacific/Chuuk",
}


@cache
def zone_aliases() -> dict[str, str]:
    """Old names of zones → the zone's name now (``Asia/Calcutta`` → ``Asia/Kolkata``), read from
    the database's own tables: a link (``tzdata.zi``) whose name is not a country's zone in
    ``zone.tab`` but whose target is.  Browsers still report some old names (Chrome: India as
    ``Asia/Calcutta``), and the picker listed both names of one zone.  Links that are still
    countries' zones (``Europe/Oslo``, a link to ``Europe/Berlin`` since 2022) stay names of
    their own.  Hand-read because neither ``zoneinfo`` nor ``tzdata`` offers the link table."""
    listed = {
        line.split("\t")[2]
        for line in _tz_file("zone.tab").splitlines()
        if line and not line.startswith("#") and line.count("\t") >= 2
    }
    links = {}
    for line in _tz_file("tzdata.zi").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "L":
            links[parts[2]] = parts[1]
    aliases = {}
    for alias, target in links.items():
        for _ in range(5):  # a link to a link (none today; bounded all the same)
            target = links.get(target, target)
        if alias not in listed and target in listed:
            renamed = RENAMED.get(alias, target)
            aliases[alias] = renamed if renamed in listed else target
    return aliases


@cache
def timezone_names() -> tuple[str, ...]:
    """The timezones a visitor can pick: the IANA areas people live in, and UTC; each zone
    under its current name only."""
    areas: tuple[str, ...] = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia")
    areas += ("Europe", "Indian", "Pacific")
    aliases = zone_aliases()
    names = {n for n in available_timezones() if n.split("/")[0] in areas and n not in aliases}
    return ("UTC", *sorted(names))


def canonical_zone(name: str) -> str:
    """A zone under its current name (``Asia/Calcutta`` → ``Asia/Kolkata``); others unchanged."""
    return zone_aliases().get(name, name)


def zone_or(name: str | None, default: str) -> str:
    name = canonical_zone(name) if name else name
    return name if name in timezone_names() else canonical_zone(default)


class _VisitorZone:
    """The hidden ``tz`` field: the zone the times were shown in.  One we do not know (edited,
    or missing) is the page's default zone, not an error: an error on a hidden field is shown
    nowhere, so the visitor got the form back with no word of what was wrong."""

    default_zone = "UTC"

    def clean_tz(self) -> str:
        return zone_or(self.cleaned_data.get("tz"), self.default_zone)  # type: ignore[attr-defined]


class BookingForm(_VisitorZone, PublicEnquiryForm):
    slot = forms.ChoiceField(label="Time", widget=forms.RadioSelect)
    tz = forms.CharField(label="Timezone", widget=forms.HiddenInput, required=False)

    def __init__(
        self,
        *args: Any,
        slots: list[Slot],
        newsletter_form: SignupForm | None = None,
        default_zone: str = "UTC",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["message"]
        self.default_zone = default_zone
        cast(forms.ChoiceField, self.fields["slot"]).choices = [(s.key, s.key) for s in slots]
        self.newsletter_form = newsletter_form
        self.wording = ""
        if newsletter_form is not None:
            lists = list(newsletter_form.lists.filter(closed_at__isnull=True).order_by("name"))
            self.wording = consent_wording(get_policy(), newsletter_form, lists)
            self.fields["newsletter"] = forms.BooleanField(
                label="Also send me your newsletter", required=False, help_text=self.wording
            )

    def record_fields(self) -> list[forms.BoundField]:
        return []

    def clean_slot(self):
        start = parse_key(self.cleaned_data["slot"])
        if start is None:
            raise forms.ValidationError("Pick a time.")
        return start

    def wants_newsletter(self) -> bool:
        return self.newsletter_form is not None and bool(self.cleaned_data.get("newsletter"))


class RescheduleForm(_VisitorZone, forms.Form):
    slot = forms.ChoiceField(label="New time", widget=forms.RadioSelect)
    tz = forms.CharField(label="Timezone", widget=forms.HiddenInput, required=False)

    def __init__(
        self, *args: Any, slots: list[Slot], default_zone: str = "UTC", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.default_zone = default_zone
        cast(forms.ChoiceField, self.fields["slot"]).choices = [(s.key, s.key) for s in slots]

    def clean_slot(self):
        start = parse_key(self.cleaned_data["slot"])
        if start is None:
            raise forms.ValidationError("Pick a time.")
        return start


# --- the operator's settings --------------------------------------------------------------------
class HostChoice(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.get_full_name() or obj.get_username()


MAX_REMINDER_HOURS = 336  # two weeks
MAX_REMINDERS = 3


class AvailabilityForm(forms.Form):
    timezone = forms.ChoiceField(label="Timezone of these hours")
    slot_minutes = forms.IntegerField(label="Demo length (minutes)", min_value=10, max_value=480)
    buffer_minutes = forms.IntegerField(
        label="Buffer between demos (minutes)", min_value=0, max_value=240
    )
    notice_hours = forms.IntegerField(label="Minimum notice (hours)", min_value=0, max_value=720)
    horizon_days = forms.IntegerField(
        label="Bookable up to (days ahead)", min_value=1, max_value=365
    )
    per_day_limit = forms.IntegerField(
        label="Demos per host per day, at most", min_value=1, max_value=50
    )
    reminder_hours = forms.CharField(
        label="Reminders (hours before the demo)",
        required=False,
        help_text="For example 24, 1: a day before and an hour before. Blank: no reminders.",
    )
    blocked_dates = forms.CharField(
        label="Holidays and blocked dates",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One date a line, as 2026-12-25.",
    )
    hosts = HostChoice(
        label="Who gives demos",
        queryset=get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .order_by("username"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="New demos go to them in turn.",
    )
    newsletter_form = forms.ModelChoiceField(
        label="Newsletter offered on the booking page",
        queryset=SignupForm.objects.filter(is_active=True).order_by("name"),
        required=False,
        empty_label="None",
        help_text="An unticked box; it signs people up through this form (with its confirmation).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["timezone"]).choices = [
            (n, n) for n in timezone_names()
        ]
        for day, name in enumerate(WEEKDAYS):
            self.fields[f"day_{day}"] = forms.CharField(
                label=name,
                required=False,
                help_text="For example 09:00-12:30, 13:30-17:00. Blank: no demos.",
            )
        self.order_fields(
            ["timezone", *[f"day_{d}" for d in range(7)], "slot_minutes", "buffer_minutes"]
        )

    @classmethod
    def initial_for(cls, availability: Availability, host_users: list) -> dict[str, Any]:
        initial: dict[str, Any] = {
            name: getattr(availability, name)
            for name in ("timezone", "slot_minutes", "buffer_minutes", "notice_hours")
        }
        initial["timezone"] = canonical_zone(availability.timezone)
        initial |= {
            "horizon_days": availability.horizon_days,
            "per_day_limit": availability.per_day_limit,
            "blocked_dates": "\n".join(availability.blocked_dates or ()),
            "reminder_hours": ", ".join(str(h) for h in availability.reminder_hours or ()),
            "hosts": host_users,
            "newsletter_form": availability.newsletter_form_id,
        }
        for day in range(7):
            windows = (availability.weekly_hours or {}).get(str(day), [])
            initial[f"day_{day}"] = ", ".join(f"{s}-{e}" for s, e in windows)
        return initial

    def clean_blocked_dates(self) -> list[str]:
        days = set()
        for number, line in enumerate(self.cleaned_data["blocked_dates"].splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            try:
                days.add(date.fromisoformat(line).isoformat())
            except ValueError:
                raise forms.ValidationError(f"Line {number}: write a date as 2026-12-25.") from None
        return sorted(days)

    def clean_reminder_hours(self) -> list[int]:
        hours = set()
        for part in self.cleaned_data["reminder_hours"].replace(";", ",").split(","):
            part = part.strip().removesuffix("h").strip()
            if not part:
                continue
            if not part.isdigit() or not 1 <= int(part) <= MAX_REMINDER_HOURS:
                raise forms.ValidationError(
                    f"Write whole hours from 1 to {MAX_REMINDER_HOURS}, separated by commas: 24, 1."
                )
            hours.add(int(part))
        if len(hours) > MAX_REMINDERS:
            raise forms.ValidationError(f"At most {MAX_REMINDERS} reminders.")
        return sorted(hours, reverse=True)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        weekly = {}
        for day in range(7):
            try:
                windows = parse_windows(cleaned.get(f"day_{day}") or "")
            except ValueError as exc:
                self.add_error(f"day_{day}", str(exc))
                continue
            if windows:
                weekly[str(day)] = [[s.strftime("%H:%M"), e.strftime("%H:%M")] for s, e in windows]
                cleaned[f"day_{day}"] = format_windows(windows)
        cleaned["weekly_hours"] = weekly
        if cleaned.get("timezone"):
            ZoneInfo(cleaned["timezone"])
        return cleaned

    def availability_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        names = ("timezone", "slot_minutes", "buffer_minutes", "notice_hours", "horizon_days")
        values = {name: data[name] for name in names}
        values |= {
            "per_day_limit": data["per_day_limit"],
            "blocked_dates": data["blocked_dates"],
            "weekly_hours": data["weekly_hours"],
            "newsletter_form": data["newsletter_form"],
            "reminder_hours": data["reminder_hours"],
        }
        return values
