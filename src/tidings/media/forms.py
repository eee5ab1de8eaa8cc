from __future__ import annotations

from django import forms
from django.conf import settings

from tidings.audience.fields import EmailAddressField
from tidings.audience.models import Contact


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Picture",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/jpeg,image/png,image/gif,image/webp"}
        ),
    )
    name = forms.CharField(
        max_length=200, required=False, help_text="For you, to find it again. Blank: the file name."
    )
    alt = forms.CharField(
        max_length=300,
        required=False,
        label="Description",
        help_text="What it shows, for people who cannot see it (used as its alt text).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        limit = int(settings.TIDINGS_MEDIA_MAX_BYTES) / 1024**2
        self.fields["file"].help_text = (
            f"JPEG, PNG, GIF or WebP, at most {limit:g} MB. It is re-encoded: camera details "
            "and GPS positions are removed, and it is scaled to at most "
            f"{settings.TIDINGS_MEDIA_MAX_WIDTH} pixels wide."
        )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = int(settings.TIDINGS_MEDIA_MAX_BYTES)
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is {upload.size / 1024**2:.1f} MB; at most {limit / 1024**2:g} MB."
            )
        return upload


class DescribeForm(forms.Form):
    name = forms.CharField(max_length=200)
    alt = forms.CharField(max_length=300, required=False, label="Description")


class PersonalForm(forms.Form):
    email = EmailAddressField(
        required=False,
        label="Email address of the person it shows",
        help_text="Blank: it shows nobody who could be recognised.",
    )

    def clean_email(self):
        email = self.cleaned_data["email"]
        if not email:
            return None
        contact = Contact.objects.with_email(email).first()
        if contact is None:
            raise forms.ValidationError("No contact has this address.")
        return contact
