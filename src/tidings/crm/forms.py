"""Forms of the CRM: the operator's pages and the public contact form.

Fields about a person come from the policy: a form for an enquiry asks exactly the enquiry
purpose's fields (required ones required), an order form the order purpose's, and so on; the
record's own fields (an order's reference, lines and invoice address) are offered only while the
purpose collects them.  Forms parse; the actions in ``crm/actions.py`` decide and store.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django import forms
from django.utils import timezone

from tidings.audience.forms import HONEYPOT_FIELD, contact_form_field
from tidings.lib.edits import SeenValuesForm
from tidings.policy import get_policy

from .actions import ENQUIRY, ORDER, SUPPORT, OrderLine, enquiry_channels, person_fields
from .models import Organisation, SupportContact

MESSAGE_MAX = 5000
DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CrmForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class PersonForm(CrmForm):
    """A form that starts with the fields a purpose collects about the person."""

    purpose = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        required, optional = person_fields(self.purpose)
        if "email" not in required:
            required = ("email", *required)  # a person is found by their address
        person = {name: contact_form_field(name, required=True) for name in required}
        person |= {
            name: contact_form_field(name, required=False)
            for name in optional
            if name not in person
        }
        self.person_field_names = tuple(person)
        self.fields = {**person, **self.fields}

    def person_values(self) -> dict[str, str]:
        return {n: self.cleaned_data[n] for n in self.person_field_names if self.cleaned_data[n]}

    def person_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.person_field_names]

    def record_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name not in self.person_field_names]


# --- the public contact form ------------------------------------------------------------------
class PublicEnquiryForm(PersonForm):
    """The website's contact form: the enquiry purpose's fields, the message, and a honeypot."""

    purpose = ENQUIRY
    message = forms.CharField(
        label="Your message", max_length=MESSAGE_MAX, widget=forms.Textarea(attrs={"rows": 6})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bots fill in every field they find; people never see this one (see the template).
        self.fields[HONEYPOT_FIELD] = forms.CharField(
            label="Leave this empty",
            required=False,
            widget=forms.TextInput(attrs={"tabindex": "-1", "autocomplete": "off"}),
        )

    def honeypot_filled(self) -> bool:
        return bool((self.data.get(HONEYPOT_FIELD) or "").strip())

    def honeypot(self) -> forms.BoundField:
        return self[HONEYPOT_FIELD]

    def record_fields(self) -> list[forms.BoundField]:
        return [self["message"]]


# --- enquiries --------------------------------------------------------------------------------
def _channel_field(initial: str = "") -> forms.ChoiceField:
    choices = [(c, c.capitalize()) for c in enquiry_channels()]
    if initial and initial not in dict(choices):
        choices.append((initial, f"{initial.capitalize()} (no longer in the policy)"))
    return forms.ChoiceField(label="Came by", choices=choices)


class EnquiryCreateForm(PersonForm):
    purpose = ENQUIRY
    message = forms.CharField(
        label="Message", max_length=MESSAGE_MAX, widget=forms.Textarea(attrs={"rows": 6})
    )
    received_at = forms.DateTimeField(
        label="Received", required=False, widget=DATETIME, help_text="Blank: now."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"] = _channel_field()
        self.order_fields([*self.person_field_names, "channel", "message", "received_at"])

    def clean_received_at(self):
        value = self.cleaned_data.get("received_at")
        if value and value > timezone.now():
            raise forms.ValidationError("That is in the future.")
        return value


class EnquiryEditForm(CrmForm):
    message = forms.CharField(
        label="Message", max_length=MESSAGE_MAX, widget=forms.Textarea(attrs={"rows": 6})
    )

    def __init__(self, *args: Any, channel: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"] = _channel_field(channel)
        self.order_fields(["channel", "message"])


class ExtendForm(CrmForm):
    until = forms.DateField(label="Keep until", widget=DATE)
    requested_by = forms.CharField(
        label="Who asked, and how",
        max_length=200,
        help_text='For example "the person, by email of 3 March".',
    )


# --- organisations and contracts --------------------------------------------------------------
class OrganisationForm(CrmForm):
    name = forms.CharField(label="Name", max_length=200)
    address = forms.CharField(
        label="Address", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


def _organisation_field(required: bool = True) -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        label="Organisation", queryset=Organisation.objects.order_by("name"), required=required
    )


class ContractForm(CrmForm):
    reference = forms.CharField(label="Reference", max_length=100, required=False)
    start = forms.DateField(label="Starts", widget=DATE)
    end = forms.DateField(
        label="Ends", required=False, widget=DATE, help_text="Blank while it runs on."
    )
    first_response_hours = forms.IntegerField(
        label="First-response target (business hours)",
        required=False,
        min_value=1,
        max_value=2000,
        help_text="Blank: no target.",
    )
    licensed_users = forms.IntegerField(
        label="Licensed named users",
        required=False,
        min_value=0,
        max_value=1_000_000,
        help_text="For the licence report. Blank: not limited.",
    )

    def __init__(self, *args: Any, with_organisation: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if with_organisation:
            self.fields = {"organisation": _organisation_field(), **self.fields}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "A contract cannot end before it starts.")
        return cleaned


# --- orders -----------------------------------------------------------------------------------
_LINE = re.compile(
    r"^\s*(?:(?P<quantity>\d{1,6})\s*[x×*]\s+)?(?P<description>.+?)"
    r"(?:\s*@\s*(?P<price>\d{1,9}(?:\.\d{1,2})?))?\s*$"
)


def parse_lines(text: str) -> list[OrderLine]:
    """One item a line: ``2 x Support hours @ 95.00`` (quantity and unit price optional)."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if not match:
            raise forms.ValidationError(f"Line {number}: write it as 2 x Description @ 95.00.")
        price = match.group("price") or ""
        if price:
            try:
                price = f"{Decimal(price):.2f}"
            except InvalidOperation:
                raise forms.ValidationError(f"Line {number}: the price is not a number.") from None
        quantity = int(match.group("quantity") or 1)
        if quantity < 1:
            raise forms.ValidationError(f"Line {number}: the quantity must be at least 1.")
        lines.append(OrderLine(match.group("description").strip()[:300], quantity, price))
    return lines


def format_lines(lines: list[dict[str, Any]]) -> str:
    out = []
    for line in lines:
        text = f"{line.get('quantity', 1)} x {line.get('description', '')}"
        if line.get("unit_price"):
            text += f" @ {line['unit_price']}"
        out.append(text)
    return "\n".join(out)


def _order_record_fields() -> dict[str, forms.Field]:
    """The order's own fields the policy's order purpose collects."""
    collected = set(get_policy().fields_for(ORDER).all)
    fields: dict[str, forms.Field] = {}
    if "order_reference" in collected:
        fields["order_reference"] = forms.CharField(label="Order reference", max_length=100)
    if "order_lines" in collected:
        fields["lines"] = forms.CharField(
            label="Lines",
            required=False,
            widget=forms.Textarea(attrs={"rows": 4}),
            help_text="One item a line: 2 x Support hours @ 95.00 (quantity and price optional).",
        )
    if "invoice_address" in collected:
        fields["invoice_address"] = forms.CharField(
            label="Invoice address", required=False, widget=forms.Textarea(attrs={"rows": 3})
        )
    return fields


class OrderFieldsMixin:
    cleaned_data: dict[str, Any]

    def clean_lines(self) -> list[OrderLine]:
        return parse_lines(self.cleaned_data.get("lines") or "")

    def order_values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "organisation": data.get("organisation"),
            "order_reference": data.get("order_reference", ""),
            "lines": data.get("lines") or [],
            "invoice_address": data.get("invoice_address", ""),
        }


class OrderCreateForm(OrderFieldsMixin, PersonForm):
    purpose = ORDER
    created_at = forms.DateTimeField(
        label="Ordered", required=False, widget=DATETIME, help_text="Blank: now."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organisation"] = _organisation_field(required=False)
        self.fields |= _order_record_fields()
        self.fields["created_at"] = self.fields.pop("created_at")

    def clean_created_at(self):
        value = self.cleaned_data.get("created_at")
        if value and value > timezone.now():
            raise forms.ValidationError("That is in the future.")
        return value


class OrderEditForm(OrderFieldsMixin, CrmForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organisation"] = _organisation_field(required=False)
        self.fields |= _order_record_fields()


# --- support ----------------------------------------------------------------------------------
class SupportContactCreateForm(PersonForm):
    purpose = SUPPORT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organisation"] = _organisation_field()


class SupportContactEditForm(CrmForm):
    left_employer = forms.DateField(
        label="Left the organisation on",
        required=False,
        widget=DATE,
        help_text="Starts their retention clock. Blank while they work there.",
    )

    def clean_left_employer(self):
        value = self.cleaned_data.get("left_employer")
        if value and value > timezone.localdate():
            raise forms.ValidationError("Record it once they have left.")
        return value


class SupportContactChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: SupportContact) -> str:
        return f"{obj.contact.display_name} — {obj.organisation.name}"


class SupportRequestForm(CrmForm):
    subject = forms.CharField(label="Subject", max_length=200)
    notes = forms.CharField(
        label="Notes", required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 6})
    )

    def __init__(self, *args: Any, with_support_contact: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if with_support_contact:
            self.fields = {
                "support_contact": SupportContactChoice(
                    label="From",
                    queryset=SupportContact.objects.select_related(
                        "contact", "organisation"
                    ).order_by("organisation__name", "contact__name"),
                ),
                **self.fields,
            }


class SearchForm(CrmForm):
    q = forms.CharField(label="Search", required=False, max_length=200)


# --- work -------------------------------------------------------------------------------------
class OperatorChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return obj.get_full_name() or obj.get_username()


def _operator_field(label: str = "Owner", required: bool = False) -> OperatorChoice:
    from .work import operators

    return OperatorChoice(
        label=label, queryset=operators(), required=required, empty_label="Nobody"
    )


class WorkForm(SeenValuesForm, CrmForm):
    """Status, owner and next action of an enquiry or a support request (with what each read
    when the page was opened: see lib.edits)."""

    next_action_on = forms.DateField(label="Next action on", required=False, widget=DATE)

    def __init__(self, *args: Any, statuses: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields = {
            "status": forms.ChoiceField(label="Status", choices=statuses),
            "owner": _operator_field(),
            **self.fields,
        }
        self.carry_seen_values()


class NoteForm(CrmForm):
    # Not stripped here: ``do_add_note`` trims it, keeping its first line's indentation.
    text = forms.CharField(
        label="Internal note",
        max_length=20000,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Seen by operators only; screened like every text we keep.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the reply form on the same page has a "text" box too, and two id_text
        # made "Internal note" label (and focus) the reply, leaving the note's box unnamed.
        kwargs.setdefault("auto_id", "id_note_%s")
        super().__init__(*args, **kwargs)


class ReplyForm(CrmForm):
    # Not stripped here: ``do_reply`` trims it, keeping its first line's indentation.
    text = forms.CharField(
        label="Reply", max_length=50000, strip=False, widget=forms.Textarea(attrs={"rows": 8})
    )

    def __init__(self, *args: Any, statuses: list[tuple[str, str]], **kwargs: Any) -> None:
        # Its own ids, as NoteForm: the work form's "status" menu is on the same page.
        kwargs.setdefault("auto_id", "id_reply_%s")
        super().__init__(*args, **kwargs)
        self.fields["status"] = forms.ChoiceField(label="Then set the status to", choices=statuses)


class WorkFilterForm(CrmForm):
    q = forms.CharField(label="Search", required=False, max_length=200)

    def __init__(self, *args: Any, statuses: list[tuple[str, str]], **kwargs: Any) -> None:
        from .work import operators

        super().__init__(*args, **kwargs)
        self.fields["status"] = forms.ChoiceField(
            label="Status",
            required=False,
            choices=[("", "Any"), ("open", "Still to do"), ("closed", "Closed"), *statuses],
        )
        owners = [("", "Anyone"), ("me", "Me"), ("none", "Nobody")]
        owners += [(str(u.pk), u.get_full_name() or u.get_username()) for u in operators()]
        self.fields["owner"] = forms.ChoiceField(label="Owner", required=False, choices=owners)


class BulkForm(CrmForm):
    """Several records of a list at once: assign them, or close them."""

    ids = forms.TypedMultipleChoiceField(coerce=int, choices=[], label="Records")
    action = forms.ChoiceField(choices=[("assign", "Assign"), ("close", "Close")])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Its own ids: the list's filter form on the same page has an "owner" field too, and two
        # id_owner made "Assign to" label the filter's menu, leaving this one without a name.
        kwargs.setdefault("auto_id", "id_bulk_%s")
        super().__init__(*args, **kwargs)
        self.fields["owner"] = _operator_field(label="Assign to")
        ids = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        cast(forms.ChoiceField, self.fields["ids"]).choices = [
            (i, i) for i in ids if str(i).isdigit()
        ][:100]


class PreferenceForm(CrmForm):
    notify = forms.ChoiceField(
        label="Email me about new work, replies and reminders",
        widget=forms.RadioSelect,
        choices=[],
    )
    mail_confirmations = forms.BooleanField(
        label="Email me when another operator asks me to send or confirm a campaign or journey",
        required=False,
    )
    mail_sent_back = forms.BooleanField(
        label=(
            "Email me when a campaign I wrote or confirmed goes back to draft because something "
            "it uses changed"
        ),
        required=False,
    )
    takes_enquiries = forms.BooleanField(label="Give me new enquiries in turn", required=False)
    takes_requests = forms.BooleanField(
        label="Give me new support requests in turn", required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from .models import OperatorPreference

        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["notify"]).choices = OperatorPreference.Notify.choices
