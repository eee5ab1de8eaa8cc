"""A campaign's A/B test (set it up on a draft; see its figures and pick a winner) and follow-ups
("resend to people who did not open or click").  Thin: forms parse, ``abtest`` and
``followups`` act."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from tidings.lib.access import has_permission, operator_required

from . import abtest, followups
from .lifecycle import CampaignNotReady, InvalidTransition
from .models import ABTest, Campaign, Variant
from .models.variants import LABELS
from .variants import MAX_VARIANTS

FIELDS = ("subject", "preheader", "sender_name", "body")


class ABTestForm(forms.Form):
    share = forms.IntegerField(
        min_value=1,
        max_value=100,
        initial=20,
        label="Test share (%)",
        help_text="Split evenly between the variants at random; the rest get the winner.",
    )
    metric = forms.ChoiceField(choices=ABTest.Metric.choices, initial=ABTest.Metric.CLICKS)
    wait_minutes = forms.IntegerField(
        min_value=1, max_value=60 * 24 * 14, initial=240, label="Wait (minutes) before choosing"
    )
    automatic = forms.BooleanField(
        required=False,
        initial=True,
        label="Send the winner to the rest automatically",
        help_text="Off: an operator picks the winner on the report.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for index in range(MAX_VARIANTS):
            label = LABELS[index]
            for name in FIELDS:
                widget = (
                    forms.Textarea(attrs={"rows": 6})
                    if name == "body"
                    else forms.TextInput(attrs={"autocomplete": "off"})
                )
                self.fields[f"{label}_{name}"] = forms.CharField(
                    required=False,
                    max_length=None if name == "body" else 300,
                    widget=widget,
                    label=f"Variant {label}: {name.replace('_', ' ')}",
                )

    def clean(self) -> dict[str, Any]:
        """Variants are filled in order: a blank variant before a filled one would be left out
        and the next one saved under its letter (what was typed as C shown as B)."""
        data = super().clean() or {}
        filled = [
            any((data.get(f"{LABELS[index]}_{n}") or "").strip() for n in FIELDS)
            for index in range(MAX_VARIANTS)
        ]
        for index in range(1, MAX_VARIANTS - 1):
            later = next((i for i in range(index + 1, MAX_VARIANTS) if filled[i]), None)
            if not filled[index] and later is not None:
                self.add_error(
                    f"{LABELS[index]}_subject",
                    f"variant {LABELS[index]} is empty but variant {LABELS[later]} is not: fill "
                    "the variants in order",
                )
                break
        return data

    def variants(self) -> list[dict[str, str]]:
        """The variants filled in (a variant with every field blank is left out, except A)."""
        found = []
        for index in range(MAX_VARIANTS):
            values = {n: self.cleaned_data[f"{LABELS[index]}_{n}"] for n in FIELDS}
            if index == 0 or any(v.strip() for v in values.values()):
                found.append(values)
        return found

    def first_empty_subject(self) -> str | None:
        """The subject field of the first variant (after A) left wholly blank, if any."""
        for label in LABELS[1:MAX_VARIANTS]:
            if not any((self.cleaned_data.get(f"{label}_{n}") or "").strip() for n in FIELDS):
                return f"{label}_subject"
        return None

    def groups(self):
        return [(label, [self[f"{label}_{n}"] for n in FIELDS]) for label in LABELS]


def _initial(campaign: Campaign) -> dict:
    test = ABTest.objects.filter(campaign=campaign).first()
    if test is None:
        return {}
    initial = {
        "share": test.share,
        "metric": test.metric,
        "wait_minutes": test.wait_minutes,
        "automatic": test.automatic,
    }
    for variant in campaign.variants.all():
        for name in FIELDS:
            initial[f"{variant.label}_{name}"] = getattr(variant, name)
    return initial


@operator_required(perm="content")
def campaign_ab(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign.objects.select_related("sender"), pk=campaign_id)
    test = ABTest.objects.filter(campaign=campaign).first()
    if campaign.status != Campaign.Status.DRAFT:
        return redirect("campaigns:ab-results", campaign_id=campaign.pk)
    form = ABTestForm(request.POST or None, initial=_initial(campaign))
    if request.method == "POST" and request.POST.get("remove") == "1":
        abtest.do_remove_ab_test(campaign, actor=request.user)
        messages.success(request, "The A/B test was removed: everyone gets the campaign itself.")
        return redirect("campaigns:detail", campaign_id=campaign.pk)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            abtest.do_set_ab_test(
                campaign,
                form.variants(),
                share=data["share"],
                metric=data["metric"],
                wait_minutes=data["wait_minutes"],
                automatic=data["automatic"],
                actor=request.user,
            )
        except CampaignNotReady as exc:
            for problem in exc.problems:
                name = problem.field if problem.field in form.fields else None
                if problem.field == "variants":
                    # Too few variants: said at the first variant left empty (B's subject), the
                    # field to fill in, rather than only at the top of the form.
                    name = form.first_empty_subject()
                form.add_error(name, problem.message)
        except InvalidTransition as exc:
            messages.error(request, str(exc).capitalize())
            return redirect("campaigns:detail", campaign_id=campaign.pk)
        else:
            messages.success(request, "A/B test saved. Preview each variant before you send.")
            return redirect("campaigns:ab", campaign_id=campaign.pk)
    return render(
        request,
        "campaigns/campaign_ab.html",
        {"campaign": campaign, "form": form, "test": test},
    )


@operator_required(perm="reports")
def campaign_ab_results(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    test = get_object_or_404(ABTest.objects.select_related("winner"), campaign=campaign)
    metric = ABTest.Metric(test.metric).label
    results = abtest.variant_results(campaign, test.metric)
    variants = {v.pk: v for v in campaign.variants.all()}
    comparison = abtest.compare(results, metric)
    can_pick = (
        test.decided_at is None
        and campaign.status in (Campaign.Status.SENDING, Campaign.Status.PAUSED)
        and has_permission(request.user, "send")
    )
    return render(
        request,
        "campaigns/campaign_ab_results.html",
        {
            "campaign": campaign,
            "test": test,
            "metric": metric,
            "rows": [(r, variants[r.variant_id]) for r in results],
            "comparison": comparison,
            "machine_only": sum(r.machine_only for r in results),
            "ends_at": abtest.test_ends_at(test) if campaign.started_at else None,
            "can_pick": can_pick,
        },
    )


@require_POST
@operator_required(perm="send")
def campaign_ab_pick(request: HttpRequest, campaign_id: int, variant_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    variant = get_object_or_404(Variant, pk=variant_id, campaign=campaign)
    try:
        released = abtest.do_pick_winner(campaign, variant, actor=request.user)
    except abtest.DecisionError as exc:
        messages.error(request, str(exc).capitalize() + ".")
    else:
        messages.success(
            request, f"Variant {variant.label} goes to the other {released} people now."
        )
    return redirect("campaigns:ab-results", campaign_id=campaign.pk)


class FollowUpForm(forms.Form):
    audience = forms.ChoiceField(
        choices=[
            ("not_opened", "People who did not open it"),
            ("not_clicked", "People who did not click"),
        ],
        widget=forms.RadioSelect,
        initial="not_opened",
    )
    days = forms.IntegerField(
        min_value=1, max_value=60, initial=3, label="Days after the original started"
    )
    subject = forms.CharField(max_length=300, help_text="A new subject for the follow-up.")


@operator_required(perm="content")
def campaign_follow_up(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = FollowUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            follow_up = followups.do_create_follow_up(
                campaign,
                audience=data["audience"],
                days=data["days"],
                subject=data["subject"],
                actor=request.user,
            )
        except CampaignNotReady as exc:
            for problem in exc.problems:
                form.add_error(None, problem.message)
        else:
            messages.success(
                request,
                "Follow-up drafted: check it, then schedule it (its time is already filled in).",
            )
            return redirect("campaigns:detail", campaign_id=follow_up.pk)
    return render(
        request,
        "campaigns/campaign_follow_up.html",
        {"campaign": campaign, "form": form, "earlier": campaign.follow_ups.all()},
    )
