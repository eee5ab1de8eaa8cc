"""The form field for an email address, for every form of every app (public and operator).

It accepts exactly what imports and the API accept: its validator is ``emails.normalise_email``
(internationalised local parts such as ``jörg@bücher.example`` included; RFC 5321 lengths
enforced), and its cleaned value is the normal form.  Django's ``forms.EmailField`` does
neither: its validator refuses a non-ASCII local part (SMTPUTF8) and lets a 65-octet one
through, so a person imported as ``jörg@…`` could not use /rights/ or the preference centre.
"""

from __future__ import annotations

from typing import Any

from django import forms

from .emails import InvalidEmail, normalise_email


class EmailAddressInput(forms.TextInput):
    """``type="text"``, not ``"email"``: the HTML standard's "valid e-mail address" is ASCII
    before the @, so a browser would refuse ``jörg@…`` before our validator saw it.
    ``inputmode="email"`` still brings up the address keyboard on phones."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        defaults = {
            "inputmode": "email",
            "autocomplete": "email",
            "autocapitalize": "none",
            "spellcheck": "false",
        }
        super().__init__({**defaults, **(attrs or {})})


class EmailAddressField(forms.CharField):
    """An address, cleaned to its normal form by ``normalise_email``; the error says why
    (the validator's reason, which never repeats the address)."""

    widget = EmailAddressInput
    default_error_messages = {"invalid": "Enter a valid email address."}

    def __init__(self, **kwargs: Any) -> None:
        # 254 characters: a valid address is at most 254 octets, so never fewer characters;
        # the octet limits themselves are normalise_email's.
        kwargs.setdefault("max_length", 254)
        kwargs.pop("empty_value", None)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        if text in self.empty_values:
            return ""
        try:
            return normalise_email(str(text))
        except InvalidEmail as exc:
            raise forms.ValidationError(
                f"{self.error_messages['invalid']} {exc}", code="invalid"
            ) from None
