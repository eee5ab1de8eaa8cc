"""Forms of the operator accounts: invitations, roles, second-factor codes."""

from __future__ import annotations

from django import forms

from tidings.lib.access import ROLE_LABELS


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(label="Role", choices=list(ROLE_LABELS.items()))


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=list(ROLE_LABELS.items()))


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The six digits your authenticator app shows, or one of your recovery codes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "text", "autofocus": True}
        ),
    )


class EnrolForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=12,
        help_text="The six digits your authenticator app shows for tidings now.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
