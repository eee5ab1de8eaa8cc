"""Forms of the API settings pages."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from tidings.audience.operator_forms import FIELD_LABELS, contact_fields

from .models import EVENTS, SCOPES

SCOPE_LABELS = {
    "read": "read — contacts, lists, imports, segments, campaigns, statistics",
    "write": "write — create and change contacts, lists, subscriptions, imports, campaigns",
    "send": "send — schedule, pause and resume campaigns; transactional mail",
    "privacy": "privacy — suppression list, rights requests",
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operator"].queryset = (
            get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
        )


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
