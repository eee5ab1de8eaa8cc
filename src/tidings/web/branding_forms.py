from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.conf import settings

from .branding import FONTS, check

_COLOUR = forms.TextInput(attrs={"type": "color"})


def _hex(value: str) -> str:
    value = (value or "").strip().lower()
    if not re.fullmatch(r"#[0-9a-f]{6}", value):
        raise forms.ValidationError("Write a colour as #rrggbb, for example #1f5fb8.")
    return value


class _LogoField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.name} ({obj.width}×{obj.height})"


class BrandingForm(forms.Form):
    logo = _LogoField(
        queryset=None,
        required=False,
        empty_label="No logo: your organisation's name in text",
        help_text="A picture from the media library.",
    )
    logo_upload = forms.ImageField(
        required=False,
        label="Or upload a logo",
        help_text="It is added to the media library (re-encoded, metadata removed).",
    )
    background = forms.CharField(widget=_COLOUR, label="Background colour")
    text = forms.CharField(widget=_COLOUR, label="Text colour")
    accent = forms.CharField(
        widget=_COLOUR,
        label="Link and button colour",
        help_text="Button text is black or white, whichever is more readable on it.",
    )
    font = forms.ChoiceField(
        choices=[(k, v[0]) for k, v in FONTS.items()],
        help_text="Fonts already on visitors' devices: nothing is fetched from a font service.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from tidings.media.queries import library

        cast(forms.ModelChoiceField, self.fields["logo"]).queryset = library()

    def clean_background(self) -> str:
        return _hex(self.cleaned_data.get("background", ""))

    def clean_text(self) -> str:
        return _hex(self.cleaned_data.get("text", ""))

    def clean_accent(self) -> str:
        return _hex(self.cleaned_data.get("accent", ""))

    def clean_logo_upload(self):
        upload = self.cleaned_data.get("logo_upload")
        if upload and upload.size > int(settings.TIDINGS_MEDIA_MAX_BYTES):
            raise forms.ValidationError("The file is too large.")
        return upload

    def clean(self):
        data = super().clean()
        if all(data.get(k) for k in ("background", "text", "accent")):
            for problem in check(data["background"], data["text"], data["accent"]):
                self.add_error(problem.field, problem.message)
        return data
