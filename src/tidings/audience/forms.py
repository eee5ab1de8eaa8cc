"""Forms of the audience app's public pages, built from the policy.

A sign-up form's fields are exactly those the policy's "newsletter" purpose collects: the required
ones always (and required), the optional ones the operator chose, nothing else.  Technical data the
policy may allow (IP address...) is captured, never typed, so it is never a form field.  Consent
boxes (one per list, one per extra channel) start unticked.  Anything else a browser posts is not
a field, so it is ignored and never stored.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

from django import forms
from django.template.loader import render_to_string
from django.urls import reverse

from tidings.lib.text import strip_format_characters
from tidings.policy import Policy, get_policy
from tidings.policy.plain import field_title

from .consent import CAPTURED_FIELDS, CHANNEL_EMAIL
from .fields import EmailAddressField, EmailAddressInput
from .models import Contact, MailingList, SignupForm
from .tokens import absolute_url

PURPOSE = "newsletter"
# Bots fill in every field they find; people never see this one (see _signup_fields.html).
HONEYPOT_FIELD = "homepage"

FIELD_LABELS = {
    "email": "Email address",
    "name": "Name",
    "phone": "Phone number",
    "company": "Company",
    "job_title": "Job title",
    "work_address": "Work address",
}
FIELD_AUTOCOMPLETE = {
    "email": "email",
    "name": "name",
    "phone": "tel",
    "company": "organization",
    "job_title": "organization-title",
    "work_address": "street-address",
}
CHANNEL_LABELS = {
    "phone": "You may also telephone me about these topics",
    "post": "You may also write to me by post about these topics",
    "sms": "You may also send me text messages about these topics",
}
# A channel is only worth asking about when the form can collect where to reach the person.
CHANNEL_NEEDS_FIELD = {"phone": "phone", "sms": "phone", "post": "work_address"}


def field_label(name: str) -> str:
    return FIELD_LABELS.get(name) or field_title(name)


def offerable_optional_fields(policy: Policy) -> tuple[str, ...]:
    """The newsletter purpose's optional fields a form may offer (typed ones only)."""
    return tuple(
        f for f in policy.fields_for(PURPOSE).optional if f not in CAPTURED_FIELDS and f != "email"
    )


def offerable_channels(policy: Policy, optional_fields: Sequence[str] = ()) -> tuple[str, ...]:
    """Marketing channels besides email a form may ask about, given the fields it offers."""
    offered = set(policy.fields_for(PURPOSE).required) | set(optional_fields)
    return tuple(
        c
        for c in policy.marketing.channels
        if c != CHANNEL_EMAIL and CHANNEL_NEEDS_FIELD.get(c, c) in offered
    )


def signup_field_names(policy: Policy, signup_form: SignupForm) -> tuple[str, ...]:
    """The contact fields a sign-up form asks for: required ones, then the chosen optional ones
    that the policy still allows (a policy change takes effect without editing the form)."""
    required = [f for f in policy.fields_for(PURPOSE).required if f not in CAPTURED_FIELDS]
    if "email" not in required:
        required.insert(0, "email")  # a newsletter needs somewhere to send it
    chosen = set(signup_form.optional_fields or ())
    optional = [f for f in offerable_optional_fields(policy) if f in chosen]
    return (*required, *optional)


def default_consent_wording(
    policy: Policy, lists: Sequence[MailingList], channels: Sequence[str] = ()
) -> str:
    """The consent wording a form shows unless the operator wrote their own."""
    controller = policy.controller.name
    topics = sorted({ml.topic for ml in lists if ml.topic})
    about = f" about {_join(topics)}" if topics else ""
    text = (
        f"{controller} will email you{about}: only the newsletters you tick. "
        "You can unsubscribe at any time, with one click, from every email we send."
    )
    if channels:
        text += " Tick the other boxes only if you also agree to be contacted that way."
    return f"{text} How we use your details: {absolute_url(reverse('policy:notice'))}"


def consent_wording(policy: Policy, signup_form: SignupForm, lists: Sequence[MailingList]) -> str:
    return signup_form.consent_wording.strip() or default_consent_wording(
        policy, lists, signup_form.channels or ()
    )


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class OneLineField(forms.CharField):
    """A text box's value on one line: line breaks, tabs and runs of spaces become one space,
    and other control characters go.  A browser's ``<input>`` cannot send them, but a crafted
    or pasted POST can, and a name was stored with its line breaks.  Invisible format
    characters (bidi overrides, direction marks...) go too (``lib.text``), so a value made of
    nothing else is blank, and a required field says so."""

    def to_python(self, value: Any) -> str:
        text = strip_format_characters(super().to_python(value) or "")
        kept = "".join(c for c in text if c.isspace() or unicodedata.category(c) != "Cc")
        return " ".join(kept.split())


def contact_form_field(name: str, *, required: bool) -> forms.Field:
    """The form field for one of the policy's contact fields."""
    attrs = {"autocomplete": FIELD_AUTOCOMPLETE.get(name, "off")}
    label = field_label(name)
    if name == "email":
        return EmailAddressField(label=label, widget=EmailAddressInput(attrs=attrs))
    if name == "work_address":
        return forms.CharField(
            label=label,
            required=required,
            max_length=Contact.WORK_ADDRESS_MAX_LENGTH,
            widget=forms.Textarea(attrs={**attrs, "rows": 3}),
        )
    column = name in Contact.COLUMN_FIELDS
    max_length = Contact.column_field(name).max_length if column else 200
    widget = forms.TextInput(attrs={**attrs, "type": "tel"} if name == "phone" else attrs)
    return OneLineField(label=label, required=required, max_length=max_length, widget=widget)


# The id of the sign-up form's message about its lists, inside their fieldset.
LISTS_ERROR_ID = "signup-lists-error"


class SignupFormBase(forms.Form):
    """What every sign-up form class (see ``build_signup_form_class``) shares."""

    contact_field_names: tuple[str, ...] = ()
    offered_lists: tuple[MailingList, ...] = ()
    offered_channels: tuple[str, ...] = ()
    wording: str = ""

    lists_error_id = LISTS_ERROR_ID

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def honeypot_filled(self) -> bool:
        return bool((self.data.get(HONEYPOT_FIELD) or "").strip())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Agreeing to be telephoned (or written to) needs the number (or address) to do it
        # with: the form only offers the box when it asks for that field.
        for channel in self.offered_channels:
            needed = CHANNEL_NEEDS_FIELD.get(channel, channel)
            if (
                cleaned.get(f"channel_{channel}")
                and needed in self.fields
                and needed not in self.errors
                and not str(cleaned.get(needed) or "").strip()
            ):
                label = self.fields[f"channel_{channel}"].label
                self.add_error(
                    needed,
                    f"Give your {str(self.fields[needed].label).lower()}, or untick “{label}”.",
                )
        if self.offered_lists and not self.chosen_list_ids():
            if len(self.offered_lists) == 1:
                message = "Tick the box to say you want this newsletter."
            else:
                message = "Tick at least one newsletter."
            self._point_lists_at_error()
            raise forms.ValidationError(message, code="no_list")
        return cleaned

    def _point_lists_at_error(self) -> None:
        # The message is shown in the lists' fieldset (lists_error()); each box is marked invalid
        # and described by it as well as by its own help, as Django does for a field's own errors
        # (a screen reader on the box hears why the form came back).
        for field in self.list_fields():
            described = [f"{field.auto_id}_helptext"] if field.help_text else []
            field.field.widget.attrs.update(
                {"aria-invalid": "true", "aria-describedby": " ".join([*described, LISTS_ERROR_ID])}
            )

    def lists_error(self) -> str:
        """Why the form came back about its lists ("Tick the box…"), or ""."""
        return " ".join(
            str(message)
            for error in self.non_field_errors().as_data()
            if error.code == "no_list"
            for message in error.messages
        )

    # --- the cleaned values, for the action -----------------------------------------------
    def contact_values(self) -> dict[str, str]:
        return {
            name: self.cleaned_data[name]
            for name in self.contact_field_names
            if self.cleaned_data.get(name)
        }

    def chosen_list_ids(self) -> list[int]:
        return [ml.pk for ml in self.offered_lists if self.cleaned_data.get(f"list_{ml.pk}")]

    def chosen_channels(self) -> list[str]:
        return [c for c in self.offered_channels if self.cleaned_data.get(f"channel_{c}")]

    # --- rendering --------------------------------------------------------------------------
    def contact_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.contact_field_names]

    def list_fields(self) -> list[forms.BoundField]:
        return [self[f"list_{ml.pk}"] for ml in self.offered_lists]

    def channel_fields(self) -> list[forms.BoundField]:
        return [self[f"channel_{c}"] for c in self.offered_channels]

    def honeypot(self) -> forms.BoundField:
        return self[HONEYPOT_FIELD]


def build_signup_form_class(
    policy: Policy, signup_form: SignupForm, lists: Sequence[MailingList]
) -> type[SignupFormBase]:
    """The Django form class for ``signup_form`` under ``policy``, offering ``lists`` (the form's
    open lists).  Pure: reads nothing but its arguments."""
    field_names = signup_field_names(policy, signup_form)
    required = set(policy.fields_for(PURPOSE).required) | {"email"}
    fields: dict[str, forms.Field] = {
        name: contact_form_field(name, required=name in required) for name in field_names
    }
    for ml in lists:
        fields[f"list_{ml.pk}"] = forms.BooleanField(
            label=ml.name, required=False, help_text=ml.description
        )
    channels = tuple(
        c
        for c in offerable_channels(policy, signup_form.optional_fields or ())
        if c in (signup_form.channels or ())
    )
    for channel in channels:
        fields[f"channel_{channel}"] = forms.BooleanField(
            label=CHANNEL_LABELS.get(channel, f"You may also contact me by {channel}"),
            required=False,
        )
    fields[HONEYPOT_FIELD] = forms.CharField(
        label="Leave this empty",
        required=False,
        widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
    )
    attrs: dict[str, Any] = {
        **fields,
        "contact_field_names": field_names,
        "offered_lists": tuple(lists),
        "offered_channels": channels,
        "wording": consent_wording(policy, signup_form, lists),
    }
    return type(f"SignupForm_{signup_form.slug.replace('-', '_')}", (SignupFormBase,), attrs)


def open_lists(signup_form: SignupForm) -> list[MailingList]:
    """The form's lists that take sign-ups: open, and of a topic the policy still names (the
    privacy notice tells people about those topics only)."""
    topics = get_policy().marketing.topics
    return list(signup_form.lists.filter(closed_at__isnull=True, topic__in=topics).order_by("name"))


def signup_form_for(signup_form: SignupForm, data=None) -> SignupFormBase:
    """A bound (or, without ``data``, unbound) form for this sign-up form and the policy."""
    form_class = build_signup_form_class(get_policy(), signup_form, open_lists(signup_form))
    return form_class(data)


def render_embed_snippet(signup_form: SignupForm) -> str:
    """The HTML an operator pastes into their own site: a plain form that posts to tidings.

    No script and no styles: it works without JavaScript and takes the host page's look.  Ids are
    prefixed so they cannot clash with the host page's.
    """
    form_class = build_signup_form_class(get_policy(), signup_form, open_lists(signup_form))
    form = form_class(auto_id="tidings-%s")
    return render_to_string(
        "audience/public/embed_snippet.html",
        {
            "form": form,
            "signup_form": signup_form,
            "action": absolute_url(reverse("public:signup", args=[signup_form.slug])),
            "privacy_url": absolute_url(reverse("policy:notice")),
        },
    ).strip()


# --- the preference centre --------------------------------------------------------------------
TRACKING_FIELD = "tracking"


def preference_channel_label(channel: str) -> str:
    """A channel's box on the preference page (and its line in a confirmation email)."""
    return CHANNEL_LABELS.get(channel, f"You may contact me by {channel}").replace(" also", "")


TRACKING_LABEL = "Allow open and click statistics"


def preference_field_names(policy: Policy) -> tuple[str, ...]:
    """Contact details the preference centre lets a person update: the newsletter purpose's
    typed fields, except the address itself."""
    return tuple(
        f for f in policy.fields_for(PURPOSE).all if f not in CAPTURED_FIELDS and f != "email"
    )


class PreferencesFormBase(forms.Form):
    contact_field_names: tuple[str, ...] = ()
    offered_lists: tuple[MailingList, ...] = ()
    offered_channels: tuple[str, ...] = ()
    offers_tracking: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def contact_values(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or "" for name in self.contact_field_names}

    def chosen_list_ids(self) -> set[int]:
        return {ml.pk for ml in self.offered_lists if self.cleaned_data.get(f"list_{ml.pk}")}

    def chosen_channels(self) -> set[str]:
        return {c for c in self.offered_channels if self.cleaned_data.get(f"channel_{c}")}

    def tracking_choice(self) -> bool | None:
        return bool(self.cleaned_data.get(TRACKING_FIELD)) if self.offers_tracking else None

    def contact_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.contact_field_names]

    def list_fields(self) -> list[forms.BoundField]:
        return [self[f"list_{ml.pk}"] for ml in self.offered_lists]

    def channel_fields(self) -> list[forms.BoundField]:
        return [self[f"channel_{c}"] for c in self.offered_channels]

    def tracking_field(self) -> forms.BoundField | None:
        return self[TRACKING_FIELD] if self.offers_tracking else None


WAITING = " (awaiting your confirmation)"


def build_preferences_form_class(
    policy: Policy,
    lists: Sequence[MailingList],
    pending_ids: frozenset[int] = frozenset(),
    *,
    waiting_channels: Sequence[str] = (),
    waiting_tracking: bool = False,
) -> type[PreferencesFormBase]:
    """``pending_ids``, ``waiting_channels``, ``waiting_tracking``: what waits for the click in
    a confirmation email; its box says so, as it shows ticked."""
    required = set(policy.fields_for(PURPOSE).required)
    names = preference_field_names(policy)
    fields: dict[str, forms.Field] = {
        name: contact_form_field(name, required=name in required) for name in names
    }
    for ml in lists:
        label = f"{ml.name}{WAITING}" if ml.pk in pending_ids else ml.name
        fields[f"list_{ml.pk}"] = forms.BooleanField(
            label=label, required=False, help_text=ml.description
        )
    channels = tuple(c for c in policy.marketing.channels if c != CHANNEL_EMAIL)
    for channel in channels:
        fields[f"channel_{channel}"] = forms.BooleanField(
            label=preference_channel_label(channel)
            + (WAITING if channel in waiting_channels else ""),
            required=False,
        )
    tracking = policy.purpose(PURPOSE).tracking
    if tracking:
        fields[TRACKING_FIELD] = forms.BooleanField(
            label=TRACKING_LABEL + (WAITING if waiting_tracking else ""),
            required=False,
            help_text=f"We record {tracking}.",
        )
    attrs: dict[str, Any] = {
        **fields,
        "contact_field_names": names,
        "offered_lists": tuple(lists),
        "offered_channels": channels,
        "offers_tracking": bool(tracking),
    }
    return type("PreferencesForm", (PreferencesFormBase,), attrs)


class PreferencesLinkForm(forms.Form):
    email = EmailAddressField(label="Email address")
