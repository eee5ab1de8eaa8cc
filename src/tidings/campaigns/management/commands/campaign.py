"""``tidings campaign``: campaigns from the command line, through ``campaigns/lifecycle.py``.

``send`` shows what the operator pages ask to be confirmed (exactly how many people, the sender,
the subject as a person reads it, the time in the controller's zone, the checklist's red items)
and schedules only with ``--yes``; every step is audited as ``cli``.  With
``TIDINGS_SEND_NEEDS_SECOND_OPERATOR`` nothing is sent from here: a second operator confirms on
the campaign's page.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tidings.audience.segments import SegmentError
from tidings.campaigns.confirmation import SendSummary, describe_when, send_summary
from tidings.campaigns.forms import LocalTimeField
from tidings.campaigns.lifecycle import (
    CampaignError,
    CampaignNotReady,
    do_cancel,
    do_pause,
    do_resume,
    do_retry_failed,
    do_schedule,
    do_unschedule,
    schedule_problems,
    transition,
)
from tidings.campaigns.models import Campaign
from tidings.campaigns.queue import delivery_counts
from tidings.campaigns.rendering import TemplateProblem, render_subject
from tidings.campaigns.samples import do_test_send, inert_links, sample_contact

ACTOR = "cli"
TIME_FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


class Command(BaseCommand):
    help = (
        "Campaigns: list, show, send (now or --at a time; --yes after reading the summary), "
        "unschedule, pause, resume, cancel, retry failed messages, test to a few addresses."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="campaigns, newest first")
        listing.add_argument("--status", choices=list(Campaign.Status.values))
        sub.add_parser("show", help="one campaign: its state and its messages").add_argument(
            "id", type=int
        )
        send = sub.add_parser(
            "send", help="schedule a draft for now or --at; prints what it would do without --yes"
        )
        send.add_argument("id", type=int)
        send.add_argument(
            "--at", metavar="'YYYY-MM-DD HH:MM'", help="in the controller's time zone"
        )
        send.add_argument("--yes", action="store_true", help="I have read the summary: send")
        for name, text in (
            ("unschedule", "a scheduled campaign back to draft"),
            ("resume", "carry on sending a paused campaign"),
            ("retry", "queue a campaign's failed messages again"),
        ):
            sub.add_parser(name, help=text).add_argument("id", type=int)
        pause = sub.add_parser("pause", help="stop sending; queued messages wait")
        pause.add_argument("id", type=int)
        pause.add_argument("--reason", default="")
        cancel = sub.add_parser("cancel", help="cancel for good; queued messages are dropped")
        cancel.add_argument("id", type=int)
        cancel.add_argument("--yes", action="store_true", help="cancel it (it cannot be undone)")
        test = sub.add_parser("test", help='send it, subject "[Test] ...", to a few addresses')
        test.add_argument("id", type=int)
        test.add_argument("--to", action="append", required=True, metavar="ADDRESS")

    def handle(self, *args, action: str, **options):
        if action == "list":
            self.stdout.write(campaigns_text(options["status"]))
            return
        campaign = _campaign(options["id"])
        try:
            if action == "show":
                self.stdout.write(campaign_text(campaign))
            elif action == "send":
                self._send(campaign, options["at"], options["yes"])
            elif action == "unschedule":
                do_unschedule(campaign, actor=ACTOR)
                self.stdout.write(f"Campaign #{campaign.pk}: back to draft.")
            elif action == "pause":
                do_pause(campaign, actor=ACTOR, reason=options["reason"])
                self.stdout.write(f"Campaign #{campaign.pk}: paused; queued messages wait.")
            elif action == "resume":
                do_resume(campaign, actor=ACTOR)
                self.stdout.write(f"Campaign #{campaign.pk}: sending again.")
            elif action == "cancel":
                self._cancel(campaign, options["yes"])
            elif action == "retry":
                count = do_retry_failed(campaign, actor=ACTOR)
                self.stdout.write(f"Campaign #{campaign.pk}: {count:,} failed message(s) queued.")
            else:
                result = do_test_send(campaign, options["to"], actor=ACTOR)
                self.stdout.write(
                    f"Campaign #{campaign.pk}: test sent to {result.sent} of "
                    f"{result.recipients} address(es)"
                    + (f"; not sent: {', '.join(result.errors)}" if result.errors else ".")
                )
                if result.errors:
                    raise CommandError("some test messages were not sent")
        except CampaignNotReady as exc:
            raise CommandError(
                f"campaign #{campaign.pk} is not ready: "
                + "; ".join(p.message for p in exc.problems)
            ) from None
        except CampaignError as exc:  # InvalidTransition: "a finished campaign cannot be paused"
            raise CommandError(f"campaign #{campaign.pk}: {exc}") from None

    def _send(self, campaign: Campaign, at: str | None, yes: bool) -> None:
        when = _when(at)
        transition(campaign.status, "schedule")
        problems = schedule_problems(campaign)
        if problems:
            raise CampaignNotReady(problems)
        try:
            summary = send_summary(campaign, when)
        except SegmentError as exc:
            raise CommandError(
                f"campaign #{campaign.pk}: a segment no longer works: {exc}"
            ) from None
        self.stdout.write(summary_text(summary))
        if not yes:
            self.stdout.write("Nothing scheduled: run it again with --yes to send.")
            return
        do_schedule(campaign, when, actor=ACTOR, confirmed=True)
        if when is None:
            self.stdout.write(f"Campaign #{campaign.pk}: sending now (a worker starts it).")
        else:
            self.stdout.write(f"Campaign #{campaign.pk}: scheduled for {describe_when(when)}.")

    def _cancel(self, campaign: Campaign, yes: bool) -> None:
        transition(campaign.status, "cancel")
        if not yes:
            waiting = delivery_counts(campaign)
            queued = waiting.get("queued", 0) + waiting.get("held", 0)
            self.stdout.write(
                f"Campaign #{campaign.pk} ({campaign.status}): cancelling drops {queued:,} queued "
                "message(s) for good. Nothing cancelled: run it again with --yes."
            )
            return
        dropped = do_cancel(campaign, actor=ACTOR)
        self.stdout.write(f"Campaign #{campaign.pk}: cancelled; {dropped:,} message(s) dropped.")


def _campaign(pk: int) -> Campaign:
    campaign = Campaign.objects.select_related("sender").filter(pk=pk).first()
    if campaign is None:
        raise CommandError(f"no campaign #{pk}")
    return campaign


def _when(at: str | None) -> datetime | None:
    if at is None:
        return None
    try:
        return LocalTimeField(input_formats=TIME_FORMATS).clean(at.strip())
    except ValidationError as exc:
        message = exc.messages[0] if exc.code == "skipped_time" else "write it as YYYY-MM-DD HH:MM"
        raise CommandError(f"--at {at!r}: {message}") from None


def summary_text(summary: SendSummary) -> str:
    lines = [
        f"Campaign #{summary.campaign.pk}: {summary.campaign.name}",
        f"  To:       {summary.recipients:,} people"
        + (f" ({summary.suppressed:,} suppressed, left out)" if summary.suppressed else ""),
        f"  From:     {summary.sender or '(no sender chosen)'}",
        f"  When:     {describe_when(summary.when)}",
    ]
    for label, text, _written, people in summary.subjects_shown:
        prefix = f"  Subject {label}:" if label else "  Subject:"
        size = f"  ({people:,} people)" if label and people is not None else ""
        lines.append(f"{prefix:<12}{text}{size}")
    if summary.ab_rest:
        lines.append(f"  The winner goes to the other {summary.ab_rest:,} people.")
    for item in summary.red:
        lines.append(f"  RED: {item.title}: {item.summary}")
    for line in summary.leftovers:
        lines.append(f"  FROM THE STARTER: {line}")
    return "\n".join(lines)


def campaigns_text(status: str | None) -> str:
    campaigns = Campaign.objects.order_by("-pk")
    if status:
        campaigns = campaigns.filter(status=status)
    lines = [f"#{c.pk:<6} {c.status:<10} {c.name}" for c in campaigns.iterator()]
    return "\n".join(lines) if lines else "No campaigns."


def _subject(campaign: Campaign) -> str:
    """As a person reads it (rendered for the sample person), or as written if it does not
    render (``show`` is where one looks to find out why)."""
    try:
        return render_subject(campaign.subject, sample_contact(), inert_links(campaign))
    except TemplateProblem:
        return campaign.subject


def campaign_text(campaign: Campaign) -> str:
    counts = {k: v for k, v in delivery_counts(campaign).items() if v}
    lines = [
        f"Campaign #{campaign.pk}: {campaign.name}",
        f"  Status:   {campaign.get_status_display()}"
        + (f" ({campaign.shown_paused_reason})" if campaign.paused_reason else ""),
        f"  Subject:  {_subject(campaign)}",
        f"  From:     {campaign.sender or '(no sender chosen)'}",
        f"  Lists:    {', '.join(campaign.lists.values_list('name', flat=True)) or '(none)'}",
    ]
    segments = list(campaign.segments.values_list("name", flat=True))
    if segments:
        lines.append(f"  Segments: {', '.join(segments)}")
    if campaign.scheduled_at:
        lines.append(f"  When:     {describe_when(campaign.scheduled_at)}")
    if counts:
        lines.append("  Messages: " + ", ".join(f"{n:,} {state}" for state, n in counts.items()))
    return "\n".join(lines)
