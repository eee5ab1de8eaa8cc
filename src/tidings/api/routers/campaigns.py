"""Campaigns: create from a template, schedule, pause, resume, statistics."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count
from django.http import HttpRequest
from ninja import Path, Query, Router, Schema, Status
from pydantic import Field, StrictBool

from tidings.audience.models import MailingList, Segment
from tidings.campaigns.lifecycle import (
    CampaignNotReady,
    InvalidTransition,
    do_create_campaign,
    do_pause,
    do_resume,
    do_schedule,
    schedule_problems,
    transition,
)
from tidings.campaigns.models import Campaign, Delivery, Sender, Template

from .. import idempotency
from ..auth import need, token_of
from ..errors import Problem, found, named
from ..schemas import BodyIn, Id, Moment, PageParams, aware, keyset

router = Router()
ID = Path(..., ge=1, le=2**62)
IDS: list[Id] = Field(default_factory=list, max_length=100)


class CampaignOut(Schema):
    id: int
    name: str
    status: str
    subject: str
    topic: str
    template_id: int | None
    sender_id: int | None
    list_ids: list[int]
    segment_ids: list[int]
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    paused_reason: str
    created_at: datetime


class CampaignPage(Schema):
    items: list[CampaignOut]
    next: str | None


class CampaignIn(BodyIn):
    name: str = Field(..., min_length=1, max_length=200)
    template_id: int = Field(..., ge=1, le=2**62, strict=True)
    topic: str = Field(..., max_length=100, description="One of the policy's marketing topics.")
    sender_id: int | None = Field(None, ge=1, le=2**62, strict=True)
    list_ids: list[Id] = IDS
    segment_ids: list[Id] = IDS


class ScheduleIn(BodyIn):
    at: Moment | None = Field(None, description="When to send (with a time zone); none: now.")
    # Strict: sending to everyone is not something "yes", 1 or "on" should do by accident.
    confirm: StrictBool = Field(
        False,
        description="Must be true (the JSON literal): nothing is scheduled without it.  Without "
        "it the answer is 422 with the exact number of recipients and the bulk-sender "
        "checklist's red items.",
    )


class PauseIn(BodyIn):
    reason: str = Field("", max_length=300)


class StatsOut(Schema):
    campaign_id: int
    status: str
    deliveries: dict[str, int]
    started_at: datetime | None
    finished_at: datetime | None


def _out(campaign: Campaign) -> dict:
    return {
        **{
            name: getattr(campaign, name)
            for name in (
                "id",
                "name",
                "status",
                "subject",
                "topic",
                "template_id",
                "sender_id",
                "scheduled_at",
                "started_at",
                "finished_at",
                "paused_reason",
                "created_at",
            )
        },
        "list_ids": sorted(ml.pk for ml in campaign.lists.all()),
        "segment_ids": sorted(s.pk for s in campaign.segments.all()),
    }


def _campaign(campaign_id: int) -> Campaign:
    return found(Campaign.objects.select_related("sender"), campaign_id, "campaign")


def _not_ready(exc: CampaignNotReady) -> Problem:
    return Problem(
        422,
        f"The campaign cannot go ahead: {exc}.",
        errors=[{"field": p.field or "campaign", "message": p.message} for p in exc.problems],
    )


def _many(model, ids: list[int], field: str) -> list:
    rows = list(model.objects.filter(pk__in=ids))
    missing = sorted(set(ids) - {obj.pk for obj in rows})
    if missing:
        raise Problem(
            422,
            f"{field}: no such id(s) {', '.join(map(str, missing))}.",
            errors=[{"field": field, "message": f"unknown id {pk}"} for pk in missing],
        )
    return rows


@router.get(
    "", response=CampaignPage, auth=need("read", page="campaigns:index"), summary="Campaigns"
)
def index(request: HttpRequest, params: Query[PageParams]):
    page = keyset(
        Campaign.objects.prefetch_related("lists", "segments"), params.cursor, params.limit
    )
    return {"items": [_out(c) for c in page["items"]], "next": page["next"]}


@router.post(
    "",
    response={201: CampaignOut},
    auth=need("write", page="campaigns:new"),
    summary="Create a draft from a template (write, content)",
    openapi_extra=idempotency.openapi(),
)
def create(request: HttpRequest, payload: CampaignIn):
    return idempotency.run(request, CampaignOut, lambda: _create(request, payload))


def _create(request: HttpRequest, payload: CampaignIn):
    template = named(
        Template.objects.select_related("layout"),
        payload.template_id,
        "template",
        field="template_id",
    )
    sender = None
    if payload.sender_id is not None:
        sender = named(Sender.objects, payload.sender_id, "sender", field="sender_id")
    try:
        campaign = do_create_campaign(
            template,
            name=payload.name,
            topic=payload.topic,
            actor=token_of(request).operator,
            sender=sender,
            lists=_many(MailingList, payload.list_ids, "list_ids"),
            segments=_many(Segment, payload.segment_ids, "segment_ids"),
        )
    except CampaignNotReady as exc:
        raise _not_ready(exc) from None
    return Status(201, _out(campaign))


@router.get("/{campaign_id}", response=CampaignOut, auth=need("read", page="campaigns:detail"))
def read(request: HttpRequest, campaign_id: int = ID):
    return _out(_campaign(campaign_id))


@router.post(
    "/{campaign_id}/schedule",
    response=CampaignOut,
    auth=need("send", page="campaigns:schedule"),
    summary="Schedule a draft for a time, or to send now, with confirm: true (scope send, "
    "permission send)",
)
def schedule(request: HttpRequest, payload: ScheduleIn, campaign_id: int = ID):
    campaign = _campaign(campaign_id)
    try:
        aware(payload.at)
    except ValueError as exc:
        raise Problem(422, f"at: {exc}", errors=[{"field": "at", "message": str(exc)}]) from None
    if not payload.confirm:
        try:
            transition(campaign.status, "schedule")
        except InvalidTransition as exc:
            raise Problem(409, f"{str(exc).capitalize()}.") from None
        problems = schedule_problems(campaign)
        if problems:
            raise _not_ready(CampaignNotReady(problems))
        raise _unconfirmed(campaign, payload.at)
    try:
        do_schedule(campaign, payload.at, actor=token_of(request).operator, confirmed=True)
    except CampaignNotReady as exc:
        raise _not_ready(exc) from None
    except InvalidTransition as exc:
        raise Problem(409, f"{str(exc).capitalize()}.") from None
    return _out(_campaign(campaign_id))


def _unconfirmed(campaign: Campaign, at: datetime | None) -> Problem:
    """What the operator pages show before "Confirm", for an API client to show its user."""
    from tidings.audience.segments import SegmentError
    from tidings.campaigns.confirmation import send_summary

    detail = "Send the request again with confirm: true once this is what you want."
    errors = [{"field": "confirm", "message": "must be true to schedule"}]
    try:
        summary = send_summary(campaign, at)
    except SegmentError as exc:
        return Problem(422, f"A segment no longer works: {exc}.", errors=errors)
    errors += [{"field": "checklist", "message": f"{i.title}: {i.summary}"} for i in summary.red]
    return Problem(
        422,
        f"Not confirmed: it would go to {summary.recipients} people from {summary.sender}. "
        + detail,
        errors=errors,
    )


def _button(action, campaign_id: int, request: HttpRequest, **kwargs) -> dict:
    campaign = _campaign(campaign_id)
    try:
        action(campaign, actor=token_of(request).operator, **kwargs)
    except InvalidTransition as exc:
        raise Problem(409, f"{str(exc).capitalize()}.") from None
    except CampaignNotReady as exc:  # resuming what changed after confirmation (four-eyes)
        raise Problem(409, f"{exc.message.capitalize()}.") from None
    return _out(_campaign(campaign_id))


@router.post(
    "/{campaign_id}/pause",
    response=CampaignOut,
    auth=need("send", page="campaigns:pause"),
    summary="Pause a sending campaign (scope send, permission send)",
)
def pause(request: HttpRequest, payload: PauseIn, campaign_id: int = ID):
    return _button(do_pause, campaign_id, request, reason=payload.reason)


@router.post(
    "/{campaign_id}/resume",
    response=CampaignOut,
    auth=need("send", page="campaigns:resume"),
    summary="Resume a paused campaign (scope send, permission send)",
)
def resume(request: HttpRequest, campaign_id: int = ID):
    return _button(do_resume, campaign_id, request)


@router.get(
    "/{campaign_id}/stats",
    response=StatsOut,
    auth=need("read", page="campaigns:report"),
    summary="Messages per delivery state (read, reports)",
)
def stats(request: HttpRequest, campaign_id: int = ID):
    campaign = _campaign(campaign_id)
    counts = dict.fromkeys(Delivery.Status.values, 0)
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for status, n in rows:
        counts[status] = n
    return {
        "campaign_id": campaign.pk,
        "status": campaign.status,
        "deliveries": counts,
        "started_at": campaign.started_at,
        "finished_at": campaign.finished_at,
    }
