"""Forms of the campaign pages: they parse and check input; the actions in lifecycle.py act."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import BaseTemporalField
from django.utils import timezone

from tidings.audience.fields import EmailAddressField
from tidings.audience.models import MailingList, Segment
from tidings.policy import get_policy

from .contact_choice import choose_contact
from .lifecycle import CampaignNotReady
from .models import Campaign, Layout, Sender, Template
from .samples import MAX_TEST_ADDRESSES


def topic_choices() -> list[tuple[str, str]]:
    return [(t, t) for t in get_policy().marketing.topics]


def _open_lists():
    return MailingList.objects.filter(closed_at__isnull=True).order_by("name")


def _verified_senders():
    return Sender.objects.filter(verified=True).order_by("name", "email")


class _Targeting(forms.Form):
    topic = forms.ChoiceField(help_text="What the campaign is about: one of the policy's topics.")
    sender = forms.ModelChoiceField(
        queryset=Sender.objects.none(),
        required=False,
        help_text="Only verified senders are offered.",
    )
    lists = forms.ModelMultipleChoiceField(
        queryset=MailingList.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Confirmed subscribers of these lists.  Only lists of the campaign's topic.",
    )
    segments = forms.ModelMultipleChoiceField(
        queryset=Segment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Contacts matching any of these segments, if they agreed to the campaign's "
        "topic (a segment is a search, not consent).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["topic"]).choices = topic_choices()
        cast(forms.ModelChoiceField, self.fields["sender"]).queryset = _verified_senders()
        cast(forms.ModelChoiceField, self.fields["lists"]).queryset = _open_lists()
        cast(forms.ModelChoiceField, self.fields["segments"]).queryset = Segment.objects.order_by(
            "name"
        )

    def add_problems(self, error: CampaignNotReady) -> None:
        """Show a domain error's problems at their fields (or above the form)."""
        for problem in error.problems:
            name = problem.field if problem.field in self.fields else None
            self.add_error(name, problem.message)


class CampaignCreateForm(_Targeting):
    name = forms.CharField(max_length=200, help_text="For you; recipients never see it.")
    template = forms.ModelChoiceField(queryset=Template.objects.none())
    field_order = ["name", "template", "topic", "sender", "lists", "segments"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["template"]).queryset = Template.objects.order_by(
            "name"
        )


class CampaignEditForm(_Targeting):
    """Everything about a draft.  Filled from and applied to a campaign by the view."""

    name = forms.CharField(max_length=200)
    subject = forms.CharField(max_length=300, required=False)
    preheader = forms.CharField(
        max_length=300,
        required=False,
        help_text="The line many mail programs show after the subject.",
    )
    reply_to = EmailAddressField(required=False, help_text="Blank: the sender's own reply-to.")
    layout = forms.ModelChoiceField(queryset=Layout.objects.none(), required=False)
    format = forms.ChoiceField(choices=Template.Format.choices)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "true"}))
    text_body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="Blank: generated from the body.",
    )
    archive = forms.BooleanField(
        required=False, help_text="Show it on the public archive page once it has been sent."
    )
    local_hour = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=23,
        label="Deliver at this local hour",
        help_text="0-23, in each recipient's own time zone where the policy lets us hold one "
        "(otherwise the company's).  Blank: as soon as it starts.",
    )
    field_order = [
        "name",
        "subject",
        "preheader",
        "sender",
        "reply_to",
        "topic",
        "lists",
        "segments",
        "layout",
        "format",
        "body",
        "text_body",
        "archive",
        "local_hour",
    ]

    def __init__(self, *args, campaign: Campaign | None = None, **kwargs) -> None:
        if campaign is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                **{name: getattr(campaign, name) for name in self.field_order},
                "lists": list(campaign.lists.all()),
                "segments": list(campaign.segments.all()),
            }
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["layout"]).queryset = Layout.objects.order_by(
            "name"
        )
        if campaign is not None and campaign.sender is not None and not campaign.sender.verified:
            # Keep showing a sender that lost its verification, so the choice is not lost
            # silently; scheduling says what is wrong with it.
            cast(forms.ModelChoiceField, self.fields["sender"]).queryset = Sender.objects.filter(
                pk__in=[*_verified_senders().values_list("pk", flat=True), campaign.sender.pk]
            )

    def values(self) -> dict:
        """The campaign fields to pass to ``do_update_campaign`` (not lists and segments)."""
        return {
            name: self.cleaned_data[name]
            for name in self.field_order
            if name not in {"lists", "segments"}
        }


class LocalTimeField(forms.DateTimeField):
    """A wall-clock time in the current time zone.  Django refuses a time that happens twice
    when the clocks go back ("may be ambiguous or may not exist"), so 01:30 on the last Sunday
    of October could not be chosen at all: it is the first of the two (still summer time), as
    the confirmation page then shows with its zone.  A time the clocks skip is refused, saying so.
    """

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime) and timezone.is_aware(value):
            return value
        parse = BaseTemporalField.to_python  # the input formats, without Django's time zone
        naive = value if isinstance(value, datetime) else parse(self, value)
        if naive is None:
            return None
        zone = timezone.get_current_timezone()
        first = naive.replace(tzinfo=zone, fold=0)
        if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
            raise ValidationError(
                f"{naive:%H:%M} on {naive.day} {naive:%B %Y} does not exist in {zone}: the "
                "clocks go forward then. Choose another time.",
                code="skipped_time",
            )
        return first


class ScheduleForm(forms.Form):
    """A time in the operator's time zone (settings.TIME_ZONE), or "send now"."""

    when = LocalTimeField(
        required=False,
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "aria-describedby": "when-help"},
            format="%Y-%m-%dT%H:%M",
        ),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
    )
    send_now = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        if not data.get("send_now") and data.get("when") is None and "when" not in self.errors:
            raise ValidationError("Choose a date and time, or send now.")
        return data

    def chosen_time(self):
        """An aware datetime, or None for "now".  Django reads a naive input in the current
        time zone, which is settings.TIME_ZONE (nothing activates another)."""
        return None if self.cleaned_data.get("send_now") else self.cleaned_data["when"]


class TestSendForm(forms.Form):
    addresses = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"Up to {MAX_TEST_ADDRESSES} addresses, one a line or separated by commas.",
    )
    contact = forms.CharField(
        required=False,
        max_length=254,
        label="Render as",
        help_text="A contact's email address or name (blank: a made-up sample person). Links in "
        "test messages do nothing.",
    )

    def clean_contact(self):
        choice = choose_contact(self.cleaned_data.get("contact", ""))
        if choice.problem:
            raise ValidationError(choice.problem)
        return choice.contact

    def address_list(self) -> list[str]:
        text = self.cleaned_data["addresses"].replace(",", "\n").replace(";", "\n")
        return [line.strip() for line in text.splitlines() if line.strip()]


class PreviewForm(forms.Form):
    contact = forms.CharField(
        required=False,
        max_length=254,
        label="Preview as",
        widget=forms.TextInput(attrs={"type": "search"}),
        help_text="A contact's email address or name. Blank: a made-up sample person.",
    )

    def clean_contact(self):
        choice = choose_contact(self.cleaned_data.get("contact", ""))
        if choice.problem:
            raise ValidationError(choice.problem)
        return choice.contact


class SenderForm(forms.ModelForm):
    class Meta:
        model = Sender
        fields = ["name", "email", "reply_to", "dkim_selector"]
        help_texts = {"name": "The From name recipients see."}
        labels = {"dkim_selector": "DKIM selector"}
        field_classes = {"email": EmailAddressField, "reply_to": EmailAddressField}

    def clean_dkim_selector(self) -> str:
        from .dkim import DkimError, check_selector

        value = self.cleaned_data["dkim_selector"].strip()
        if not value:
            return ""
        try:
            return check_selector(value)
        except DkimError as exc:
            raise ValidationError(str(exc)) from None
