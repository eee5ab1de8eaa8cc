"""Forms of the rights pages: the public request form, the correction form, operator actions."""

from __future__ import annotations

from typing import Any

from django import forms

from tidings.audience.fields import EmailAddressField
from tidings.audience.forms import HONEYPOT_FIELD, contact_form_field

from .actions import emptied_error, rectifiable_fields, required_fields
from .models import RightsRequest

KIND_CHOICES = [
    (RightsRequest.Kind.ACCESS, "Send me a copy of the personal data you hold about me"),
    (RightsRequest.Kind.RECTIFY, "Correct the details you hold about me"),
    (RightsRequest.Kind.ERASE, "Erase the personal data you hold about me"),
    (RightsRequest.Kind.OBJECT, "Stop all marketing to me, on every channel"),
]


class RightsRequestForm(forms.Form):
    kind = forms.ChoiceField(
        label="What would you like us to do?", choices=KIND_CHOICES, widget=forms.RadioSelect
    )
    email = EmailAddressField(
        label="Your email address",
        help_text="We send a link to this address: nothing happens until you follow it.",
    )
    details = forms.CharField(
        label="What should we correct? (optional)",
        required=False,
        max_length=2000,
        help_text="For a correction: after following the link you can correct your details "
        "yourself; tell us here about anything else that is wrong.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    homepage = forms.CharField(
        label="Leave this empty",
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )

    def honeypot_filled(self) -> bool:
        return bool((self.data.get(HONEYPOT_FIELD) or "").strip())


class RectifyForm(forms.Form):
    """The fields a person may correct, as the policy allows them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in rectifiable_fields():
            self.fields[name] = contact_form_field(name, required=False)

    def clean(self) -> dict[str, Any] | None:
        # Not required=True: a correction may give some fields only (``rights rectify --set``);
        # a required one it gives must not be blank.
        cleaned = super().clean() or self.cleaned_data
        for name in required_fields():
            given = name in self.data and name not in self.errors
            if given and not " ".join(str(cleaned.get(name) or "").split()):
                self.add_error(name, emptied_error(name) + ".")
        return cleaned


class OperatorRequestForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=RightsRequest.Kind.choices)
    email = EmailAddressField(label="The person's email address")
    channel = forms.ChoiceField(
        label="Received by",
        choices=[("email", "Email"), ("phone", "Telephone"), ("post", "Post"), ("web", "Web")],
    )
    verified = forms.BooleanField(
        label="I have verified the person's identity (no link is sent)", required=False
    )
    details = forms.CharField(
        label="Details (for a correction)", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason (the person is told it)",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class AuditFilterForm(forms.Form):
    action = forms.CharField(label="Action", required=False, max_length=60)
    object_type = forms.CharField(label="Object type", required=False, max_length=60)
    object_id = forms.CharField(label="Object id", required=False, max_length=64)
    actor = forms.CharField(label="Actor (user name or label)", required=False, max_length=150)
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            raise forms.ValidationError("The start date is after the end date.")
        return cleaned
