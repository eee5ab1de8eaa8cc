"""Forms of the operator pages, shaped by the policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from django import forms

from tidings.lib.edits import SeenValuesForm
from tidings.policy import get_policy
from tidings.policy.plain import field_title

from .fields import EmailAddressField
from .models import Contact, MailingList, Segment, Subscription

FIELD_LABELS = {
    "name": "Name",
    "email": "Email address",
    "phone": "Phone",
    "company": "Company",
    "job_title": "Job title",
    "work_address": "Work address",
}


def contact_fields() -> list[str]:
    """The contact columns the policy lets us hold at all (some purpose collects them)."""
    policy = get_policy()
    collected = {f for p in policy.purposes.values() for f in p.collects.all}
    return [f for f in Contact.COLUMN_FIELDS if f in collected]


class ContactForm(SeenValuesForm, forms.ModelForm):
    # A text column: limited here, as on the public forms and the API.
    work_address = forms.CharField(
        required=False,
        max_length=Contact.WORK_ADDRESS_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    class Meta:
        model = Contact
        fields = list(Contact.COLUMN_FIELDS)
        # The one address validator (normalise_email), not the model field's EmailField.
        field_classes = {"email": EmailAddressField}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = contact_fields()
        for name in list(self.fields):
            if name not in allowed:
                del self.fields[name]
            else:
                self.fields[name].label = FIELD_LABELS.get(name) or field_title(name)


class MailingListForm(forms.ModelForm):
    class Meta:
        model = MailingList
        fields = ["name", "topic", "description", "is_public"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        topics = get_policy().marketing.topics
        self.fields["topic"] = forms.ChoiceField(
            choices=[(t, t) for t in topics],
            help_text="The policy's marketing topics: consent is given per topic.",
        )


class ContactFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", help_text="Start of address or name")
    list = forms.ModelChoiceField(MailingList.objects.all(), required=False, empty_label="Any list")
    status = forms.ChoiceField(
        choices=[("", "Any status"), *Subscription.Status.choices], required=False
    )
    segment = forms.ModelChoiceField(
        Segment.objects.all(), required=False, empty_label="Any segment"
    )


class BulkListForm(forms.Form):
    ACTIONS = [("add", "Add to list"), ("remove", "Unsubscribe from list")]
    action = forms.ChoiceField(choices=ACTIONS)
    target = forms.ModelChoiceField(MailingList.objects.all(), label="List")
    consent_source = forms.CharField(
        required=False,
        max_length=500,
        label="How did they consent?",
        help_text='Required to add people: e.g. "asked at the 2026 user conference, signed sheet".',
    )

    def clean(self):
        data = super().clean()
        if data.get("action") == "add" and not data.get("consent_source", "").strip():
            self.add_error("consent_source", "Say how these people gave their consent.")
        return data


class SuppressionPasteForm(forms.Form):
    entries = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        label="Addresses or domains",
        help_text="One per line: name@example.com, or example.com for a whole domain.",
        max_length=1_000_000,
    )


def merge_choice_label(contact: Contact) -> str:
    """How a contact is named in the merge page's list: id, name, address, age."""
    name = f"{contact.name} " if contact.name else ""
    return f"Contact #{contact.pk}: {name}<{contact.email}>, created {contact.created_at:%-d %B %Y}"


class ContactMergeForm(forms.Form):
    """Which contact to merge into this one (picked from ``candidates``: the page's search
    results), and whether its address differs."""

    other = forms.IntegerField(
        label="Contact to merge into this one",
        min_value=1,
        help_text="Everything it holds moves to this contact, then it is deleted.",
        widget=forms.RadioSelect,
    )
    different_addresses = forms.BooleanField(
        required=False,
        label="Its address differs, and I know both are this person's",
        help_text="This contact's address stays; the other address goes on no list.",
    )
    confirm = forms.BooleanField(label="Merge them: this cannot be undone")

    def __init__(
        self, *args: Any, keep: Contact, candidates: Sequence[Contact] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.keep = keep
        widget = cast(forms.RadioSelect, self.fields["other"].widget)
        widget.choices = [(c.pk, merge_choice_label(c)) for c in candidates]

    def clean_other(self) -> Contact:
        pk = self.cleaned_data["other"]
        if pk == self.keep.pk:
            raise forms.ValidationError("A contact cannot be merged with itself.")
        other = Contact.objects.filter(pk=pk).first()
        if other is None:
            raise forms.ValidationError(f"There is no contact #{pk}.")
        return other
