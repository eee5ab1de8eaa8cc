"""The journey editor's form: the journey's settings as fields, its steps and goals as TOML in
the format of journey files (``files.py``), checked with key-path errors."""

from __future__ import annotations

from typing import Any, cast

import tomli_w
from django import forms

from tidings.audience.fields import EmailAddressField
from tidings.audience.models import MailingList, Segment, SignupForm
from tidings.campaigns.models import Campaign, Sender, Template
from tidings.policy import get_policy

from .actions import JourneySpec
from .files import read_toml
from .models import SERVICE, Journey

EXAMPLE_STEPS = """[[steps]]
id = "hello"
kind = "send_email"
template = "Welcome"
subject = "Welcome, {{ contact.first_name }}"

[[steps]]
id = "pause"
kind = "wait"
duration = "2 days"

[[steps]]
id = "tips"
kind = "send_email"
template = "Welcome"
subject = "Three tips to get started"

[[goals]]
name = "booked a demo"
event = "demo_booked"
"""


def example_steps() -> str:
    """The example a new journey starts from, its send steps on a template that exists: the
    example's "Welcome" if there is one, else the first by name (saving it as it is works)."""
    names = Template.objects.order_by("name").values_list("name", flat=True)
    name = "Welcome" if names.filter(name="Welcome").exists() else names.first()
    if name is None:  # no template yet: saving says so, with the step's key path
        return EXAMPLE_STEPS
    return EXAMPLE_STEPS.replace('template = "Welcome"', tomli_w.dumps({"template": name}).strip())


class JourneyForm(forms.Form):
    name = forms.CharField(max_length=200)
    # Not required: "" is a choice, service messages (SERVICE).
    topic = forms.ChoiceField(
        required=False, help_text="Marketing needs the person's consent to the topic."
    )
    sender = forms.ModelChoiceField(
        queryset=Sender.objects.filter(verified=True),
        required=False,
        empty_label="The installation's address",
    )
    trigger = forms.ChoiceField(choices=Journey.Trigger.choices)
    trigger_list = forms.ModelChoiceField(
        queryset=MailingList.objects.filter(closed_at__isnull=True),
        required=False,
        empty_label="Any list of the topic",
        label="List (for “confirmed on a list”)",
    )
    trigger_event = forms.CharField(
        required=False, max_length=100, label="Event name (for “a custom event”)"
    )
    trigger_days = forms.IntegerField(
        required=False,
        min_value=-365,
        max_value=365,
        label="Days after the date (negative: before)",
    )
    trigger_field = forms.CharField(
        required=False,
        max_length=120,
        label="Date field (for “a date field comes round”)",
        help_text="contract_end, or a contact attribute holding a date: attributes.birthday",
    )
    trigger_yearly = forms.BooleanField(
        required=False, label="Every year (a birthday or an anniversary; 29 February: 28th)"
    )
    trigger_campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.exclude(status=Campaign.Status.DRAFT).order_by("-pk"),
        required=False,
        label="Campaign (for “a link clicked in a campaign”)",
    )
    trigger_url = forms.URLField(
        required=False,
        max_length=2000,
        label="Link (blank: any link of the campaign)",
        assume_scheme="https",
    )
    trigger_form = forms.ModelChoiceField(
        queryset=SignupForm.objects.all(),
        required=False,
        label="Sign-up form (for “a sign-up form submitted”)",
    )
    trigger_segment = forms.ModelChoiceField(
        queryset=Segment.objects.all(),
        required=False,
        label="Saved segment (for “a contact starts matching a saved segment”)",
    )
    entry = forms.ChoiceField(choices=Journey.Entry.choices)
    entry_days = forms.IntegerField(min_value=0, max_value=3650, initial=0, required=False)
    steps = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}),
        initial=EXAMPLE_STEPS,
        help_text="Steps and goals in the journey file format (see the README).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        topics = [(t, t) for t in get_policy().marketing.topics]
        cast(forms.ChoiceField, self.fields["topic"]).choices = [
            *topics,
            (SERVICE, "Service messages (no marketing)"),
        ]
        # Service mail is the exception an editor chooses, never what a blank form sends.
        if topics and "topic" not in self.initial:
            self.initial["topic"] = topics[0][0]
        if "steps" not in self.initial:
            self.initial["steps"] = example_steps()

    @classmethod
    def for_journey(cls, journey: Journey) -> JourneyForm:
        version = journey.current()
        text = tomli_w.dumps(
            {
                "steps": list(version.steps) if version else [],
                **({"goals": list(version.goals)} if version and version.goals else {}),
            }
        )
        params = journey.trigger_params
        return cls(
            initial={
                "name": journey.name,
                "topic": journey.topic,
                "sender": journey.sender_id,
                "trigger": journey.trigger,
                "trigger_list": params.get("list"),
                "trigger_event": params.get("name", ""),
                "trigger_days": params.get("days"),
                "trigger_field": params.get("field", ""),
                "trigger_yearly": bool(params.get("yearly")),
                "trigger_campaign": params.get("campaign"),
                "trigger_url": params.get("url", ""),
                "trigger_form": params.get("form"),
                "trigger_segment": params.get("segment"),
                "entry": journey.entry,
                "entry_days": journey.entry_days,
                "steps": text,
            }
        )

    def clean_steps(self) -> dict[str, Any]:
        try:
            data = read_toml(self.cleaned_data["steps"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        unknown = [k for k in data if k not in ("steps", "goals")]
        if unknown:
            raise forms.ValidationError(f"{unknown[0]}: unknown key (only steps and goals)")
        return data

    def spec(self) -> JourneySpec:
        data = self.cleaned_data
        trigger = data["trigger"]
        params: dict[str, Any] = {}
        if trigger == Journey.Trigger.CONFIRMED and data.get("trigger_list"):
            params["list"] = data["trigger_list"].pk
        if trigger == Journey.Trigger.EVENT:
            params["name"] = (data.get("trigger_event") or "").strip()
        if trigger == Journey.Trigger.DATE:
            params = {
                "field": (data.get("trigger_field") or "").strip() or "contract_end",
                "days": data.get("trigger_days") or 0,
            }
            if data.get("trigger_yearly"):
                params["yearly"] = True
        if trigger == Journey.Trigger.LINK:
            campaign = data.get("trigger_campaign")
            params = {"campaign": campaign.pk if campaign else None}
            if data.get("trigger_url"):
                params["url"] = data["trigger_url"]
        if trigger == Journey.Trigger.FORM:
            form = data.get("trigger_form")
            params = {"form": form.pk if form else None}
        if trigger == Journey.Trigger.SEGMENT:
            segment = data.get("trigger_segment")
            params = {"segment": segment.pk if segment else None}
        return JourneySpec(
            name=data["name"],
            topic=data["topic"],
            trigger=trigger,
            trigger_params=params,
            entry=data["entry"],
            entry_days=data.get("entry_days") or 0,
            steps=data["steps"].get("steps", []),
            goals=data["steps"].get("goals", []),
            sender_id=data["sender"].pk if data.get("sender") else None,
        )

    def add_problems(self, problems: list[Any]) -> None:
        fields = {"name", "topic", "sender", "trigger", "entry", "entry_days"}
        for problem in problems:
            where = problem.field or ""
            if where in fields:
                self.add_error(where, problem.message)
            elif where.startswith("trigger_params"):
                self.add_error(None, f"{where}: {problem.message}")
            else:
                self.add_error("steps", str(problem))


class SimulateForm(forms.Form):
    contact = EmailAddressField(label="Their email address")
    start = forms.DateTimeField(
        required=False,
        label="Starting at (blank: now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    days = forms.IntegerField(min_value=1, max_value=365, initial=30)
