"""Operator pages for journeys (under Campaigns).  Thin: forms parse, ``actions`` act.

Building, editing and simulating need "content"; switching a journey on, off or archiving it
(which decides who gets mail) needs "send", as campaigns do."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from tidings.audience.emails import InvalidEmail, normalise_email
from tidings.audience.models import Contact
from tidings.campaigns.models import Template
from tidings.lib.access import has_permission, operator_required
from tidings.lib.four_eyes import enforced

from . import actions, four_eyes
from .forms import JourneyForm, SimulateForm
from .models import Enrolment, Journey
from .simulate import simulate
from .stats import StepCounts, journey_counts
from .svg import journey_svg
from .triggers import describe_trigger

SEND_TO_CHANGE = (
    "It has been started: a change goes out to the people who enter it next, so only an operator "
    "who may send (an editor or owner) can save it."
)


def _journey(journey_id: int) -> Journey:
    return get_object_or_404(Journey.objects.select_related("sender"), pk=journey_id)


@operator_required(perm="content")
def journey_index(request: HttpRequest) -> HttpResponse:
    journeys = Journey.objects.exclude(status=Journey.Status.ARCHIVED).annotate(
        people=Count("enrolments"),
        open=Count("enrolments", filter=Q(enrolments__state__in=Enrolment.OPEN)),
    )
    archived = Journey.objects.filter(status=Journey.Status.ARCHIVED).count()
    # Marked for everyone; the dashboard lists those each operator may confirm.
    waiting = {j.pk for j in four_eyes.waiting()}
    return render(
        request,
        "journeys/index.html",
        {"journeys": journeys.order_by("name"), "archived": archived, "waiting": waiting},
    )


@operator_required(perm="content")
def journey_new(request: HttpRequest) -> HttpResponse:
    form = JourneyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            journey = actions.do_create_journey(form.spec(), actor=request.user)
        except actions.JourneyNotReady as exc:
            form.add_problems(exc.problems)
        else:
            messages.success(request, "Journey saved as a draft.")
            return redirect("journeys:detail", journey_id=journey.pk)
    return render(request, "journeys/edit.html", {"form": form, "journey": None})


@operator_required(perm="content")
def journey_edit(request: HttpRequest, journey_id: int) -> HttpResponse:
    journey = _journey(journey_id)
    # A journey that was started sends what it says to everyone who enters next: changing it is
    # sending, as starting it was (journey_activate needs "send"; a writer may not send).
    may_change = journey.status == Journey.Status.DRAFT or has_permission(request.user, "send")
    form = (
        JourneyForm(request.POST) if request.method == "POST" else JourneyForm.for_journey(journey)
    )
    if request.method == "POST" and not may_change:
        form.add_error(None, SEND_TO_CHANGE)
        context = {"form": form, "journey": journey, "may_change": may_change}
        return render(request, "journeys/edit.html", context, status=403)
    if request.method == "POST" and form.is_valid():
        try:
            saved = actions.do_update_journey(journey, form.spec(), actor=request.user)
        except actions.JourneyNotReady as exc:
            form.add_problems(exc.problems)
        except actions.InvalidTransition as exc:
            form.add_error(None, str(exc))
        else:
            if journey.confirmed_fingerprint and not saved.confirmed_fingerprint:
                messages.warning(
                    request,
                    "Saved, and paused: what it sends changed after a second operator "
                    "confirmed it, so another operator must confirm it before it runs again.",
                )
            else:
                messages.success(
                    request, "Saved. People already in it finish the version they entered."
                )
            return redirect("journeys:detail", journey_id=journey.pk)
    context = {"form": form, "journey": journey, "may_change": may_change}
    return render(request, "journeys/edit.html", context)


@operator_required(perm="content")
def journey_detail(request: HttpRequest, journey_id: int) -> HttpResponse:
    journey = _journey(journey_id)
    version = journey.current()
    counts = journey_counts(journey)
    steps = version.steps if version else []
    problems = actions.activation_problems(journey) if journey.status != "archived" else []
    simulation, sim_form = None, SimulateForm(request.GET or None)
    if request.GET and sim_form.is_valid():
        contact = _contact(sim_form.cleaned_data["contact"])
        if contact is None:
            sim_form.add_error("contact", "No contact has that address.")
        else:
            simulation = simulate(
                journey,
                contact,
                start=sim_form.cleaned_data.get("start"),
                days=sim_form.cleaned_data["days"],
            )
    parked = Enrolment.objects.filter(journey=journey, state=Enrolment.State.PARKED).order_by("pk")[
        :50
    ]
    context = {
        "journey": journey,
        "trigger": describe_trigger(journey),
        "version": version,
        "counts": counts,
        # Built from escaped parts only (svg.py).
        "svg": mark_safe(journey_svg(steps, counts.steps, f"The steps of {journey.name}")),  # noqa: S308
        "problems": problems,
        "sim_form": sim_form,
        "simulation": simulation,
        "parked": parked,
        "mail_steps": [
            (step["id"], counts.steps.get(step["id"]) or StepCounts())
            for step in steps
            if step.get("kind") == "send_email"
        ],
        "older": Enrolment.objects.filter(journey=journey, state__in=Enrolment.OPEN)
        .exclude(version=version)
        .count(),
        **_four_eyes(request, journey, steps),
    }
    return render(request, "journeys/detail.html", context)


def _four_eyes(request: HttpRequest, journey: Journey, steps: list) -> dict:
    """What the page shows with four-eyes sending: whether a second operator confirmed it as it
    is, and, to an operator who may confirm it, the hash of what they are looking at."""
    if not enforced() or journey.status == Journey.Status.ARCHIVED:
        return {"four_eyes": False}
    confirmed = four_eyes.is_confirmed(journey)
    may_send = has_permission(request.user, "send")
    return {
        "four_eyes": True,
        "confirmed": confirmed,
        "may_confirm": not confirmed and may_send and four_eyes.may_confirm(journey, request.user),
        "may_request": not confirmed and may_send and not journey.confirmation_requested_by_id,
        "seen": four_eyes.fingerprint(journey),
        "sends": _sends(steps),
    }


def _sends(steps: list) -> list[dict]:
    """Each send step with the id of the template it sends (None: no template has that name),
    so the page links to what is to be confirmed."""
    sends = [s for s in steps if s.get("kind") == "send_email"]
    names = {str(s.get("template")) for s in sends}
    ids = dict(Template.objects.filter(name__in=names).values_list("name", "pk"))
    return [{**s, "template_id": ids.get(str(s.get("template")))} for s in sends]


@require_POST
@operator_required(perm="send")
def journey_confirm(request: HttpRequest, journey_id: int) -> HttpResponse:
    journey = _journey(journey_id)
    try:
        four_eyes.do_confirm(journey, actor=request.user, seen=request.POST.get("seen", ""))
    except actions.InvalidTransition as exc:
        messages.error(request, f"{str(exc).capitalize()}.")
    except actions.JourneyNotReady as exc:
        for problem in exc.problems:
            messages.error(request, problem.message)
    else:
        messages.success(request, "Confirmed: it runs as you saw it.")
    return redirect("journeys:detail", journey_id=journey.pk)


def _contact(address: str) -> Contact | None:
    try:
        return Contact.objects.with_email(normalise_email(address)).first()
    except InvalidEmail:
        return None


def _button(action, done: str):
    @require_POST
    @operator_required(perm="send")
    def view(request: HttpRequest, journey_id: int) -> HttpResponse:
        journey = _journey(journey_id)
        try:
            action(journey, actor=request.user)
        except actions.InvalidTransition as exc:
            messages.error(request, f"{str(exc).capitalize()}.")
        except actions.JourneyNotReady as exc:
            for problem in exc.problems:
                messages.error(request, str(problem))
        else:
            messages.success(request, done)
        return redirect("journeys:detail", journey_id=journey.pk)

    view.__name__ = f"journey_{action.__name__.removeprefix('do_')}"
    return view


journey_activate = _button(actions.do_activate, "Active: people who trigger it now enter it.")
journey_pause = _button(actions.do_pause, "Paused: nobody moves on or enters until you resume.")
journey_resume = _button(actions.do_resume, "Resumed.")
journey_archive = _button(actions.do_archive, "Archived; everyone still in it has left.")
journey_request = _button(
    four_eyes.do_request_confirmation, "Asked: it waits for a second operator to confirm it."
)
journey_retry = _button(actions.do_retry_parked, "The parked people try the failed step again.")
journey_move = _button(
    actions.do_move_to_current_version,
    "People in older versions moved to the current one (where their step still exists).",
)
