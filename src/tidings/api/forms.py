"""Forms of the API settings pages."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from tidings.audience.operator_forms import FIELD_LABELS, contact_fields

from .actions import DEFAULT_EXPIRY_DAYS
from .models import EVENTS, SCOPES

SCOPE_LABELS = {
    "read": "read — contacts, lists, imports, segments, campaigns, statistics",
    "write": "write — create and change contacts, lists, subscriptions, imports, campaigns",
    "send": "send — schedule, pause and resume campaigns; transactional mail",
    "privacy": "privacy — suppression list, rights requests",
}


EXPIRY_LABELS = {
    "30": "30 days",
    "90": "90 days (the default)",
    "365": "1 year",
    "never": "Never — not recommended: a token that leaks keeps working until someone revokes it",
}


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for.")
    operator = forms.ModelChoiceField(
        get_user_model().objects.none(),
        help_text="The token acts as this operator: it can never do more than their role allows.",
    )
    scopes = forms.MultipleChoiceField(
        choices=[(s, SCOPE_LABELS[s]) for s in SCOPES], widget=forms.CheckboxSelectMultiple
    )
    expires = forms.ChoiceField(
        label="Expires after",
        choices=list(EXPIRY_LABELS.items()),
        initial="90",
        required=False,  # none chosen: the default, 90 days
        widget=forms.RadioSelect,
        help_text="It stops working then; make a new one before. The token list and tidings "
        "doctor show the ones that expire within 14 days.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operator"].queryset = (
            get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
        )

    def expires_in_days(self) -> int | None:
        """The chosen lifetime in days, None for never (after ``is_valid``)."""
        value = self.cleaned_data.get("expires") or str(DEFAULT_EXPIRY_DAYS)
        return None if value == "never" else int(value)


class WebhookForm(forms.Form):
    url = forms.URLField(
        max_length=500, assume_scheme="https", help_text="Where events are POSTed."
    )
    description = forms.CharField(max_length=200, required=False)
    events = forms.MultipleChoiceField(
        choices=list(EVENTS.items()), widget=forms.CheckboxSelectMultiple
    )
    fields = forms.MultipleChoiceField(  # type: ignore[assignment]  # the form's metaclass moves it
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Personal fields it may receive",
        help_text="Payloads carry internal ids; tick the contact fields this receiver needs.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fields"].choices = [(f, FIELD_LABELS.get(f, f)) for f in contact_fields()]
