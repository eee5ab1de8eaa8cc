"""``tidings campaign``: what a person scripting sends from a terminal relies on."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command

from tests.campaigns.lifecycle_helpers import (
    make_campaign,
    make_list,
    make_sender,
    queue,
    subscriber,
    use_outbox,
)
from tidings.audience.suppression import do_suppress
from tidings.campaigns.models import Campaign, Delivery, Sender
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("campaign", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def news():
    return make_list("Product news", "product news")


def ready(*lists, **fields) -> Campaign:
    sender = Sender.objects.filter(verified=True).first() or make_sender()
    return make_campaign(*lists, sender=sender, with_template=True, **fields)


def test_send_shows_the_exact_audience_and_schedules_only_with_yes(news):
    campaign = ready(news)
    subscriber("Ada Lovelace", news)
    subscriber("Bob Byron", news, email="bob@example.com")
    do_suppress("bob@example.com", reason="hard_bounce")

    said = run("send", str(campaign.pk))

    assert "To:       1 people (1 suppressed, left out)" in said
    assert "From:     Example News <news@example.co.uk>" in said
    assert "  Subject:  News for you\n" in said
    assert said.rstrip().endswith("run it again with --yes to send.")
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    said = run("send", str(campaign.pk), "--yes")

    assert "sending now" in said
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"
    entry = AuditEntry.objects.get(action="campaign.scheduled", object_id=str(campaign.pk))
    assert entry.actor_label == "cli" and entry.details["confirmed"] is True


def test_send_at_a_local_time_and_a_time_the_clocks_skip(news, settings):
    settings.TIME_ZONE = "Europe/London"
    campaign = ready(news)
    subscriber("Ada Lovelace", news)

    with time_machine.travel(datetime(2026, 3, 1, 9, 0, tzinfo=UTC), tick=False):
        with pytest.raises(CommandError, match="does not exist in Europe/London"):
            run("send", str(campaign.pk), "--at", "2026-03-29 01:30", "--yes")
        with pytest.raises(CommandError, match="YYYY-MM-DD HH:MM"):
            run("send", str(campaign.pk), "--at", "next tuesday", "--yes")
        said = run("send", str(campaign.pk), "--at", "2026-07-01 09:00", "--yes")

    campaign.refresh_from_db()
    assert campaign.scheduled_at == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)  # 09:00 BST
    assert "scheduled for 1 Jul 2026, 09:00 BST" in said


def test_a_campaign_that_is_not_ready_says_every_problem_in_one_line(news):
    campaign = make_campaign(sender=make_sender(verified=False, email="x@example.com"), subject="")

    with pytest.raises(CommandError) as raised:
        run("send", str(campaign.pk), "--yes")

    message = str(raised.value)
    assert message.startswith(f"campaign #{campaign.pk} is not ready: ")
    assert "\n" not in message and "not verified" in message
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_with_a_second_operator_required_nothing_is_sent_from_the_command_line(news, settings):
    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True
    campaign = ready(news)
    subscriber("Ada Lovelace", news)

    with pytest.raises(CommandError, match="another operator"):
        run("send", str(campaign.pk), "--yes")
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_pause_resume_and_a_forbidden_step(news):
    campaign = ready(news, status=Campaign.Status.SENDING)

    assert "paused" in run("pause", str(campaign.pk), "--reason", "wrong link")
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert "sending again" in run("resume", str(campaign.pk))
    finished = ready(news, status=Campaign.Status.FINISHED)
    with pytest.raises(CommandError, match="a finished campaign cannot be paused"):
        run("pause", str(finished.pk))


def test_cancel_says_what_it_drops_and_needs_yes(news):
    campaign = ready(news, status=Campaign.Status.PAUSED)
    queue(campaign, [subscriber("Ada Lovelace", news), subscriber("Bob Byron", news)])

    said = run("cancel", str(campaign.pk))
    assert "drops 2 queued message(s)" in said
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"

    said = run("cancel", str(campaign.pk), "--yes")
    assert "cancelled; 2 message(s) dropped" in said
    assert set(Delivery.objects.values_list("status", flat=True)) == {"skipped"}


def test_test_send_goes_to_the_addresses_given(news, settings, django_capture_on_commit_callbacks):
    use_outbox(settings)
    campaign = ready(news)

    with django_capture_on_commit_callbacks(execute=True):
        said = run("test", str(campaign.pk), "--to", "me@example.com")
    assert f"Campaign #{campaign.pk}: test sent" in said
    with pytest.raises(CommandError, match="not an email address"):
        run("test", str(campaign.pk), "--to", "nobody")


def test_list_show_and_a_missing_campaign(news):
    campaign = ready(news, name="December news")
    queue(campaign, [subscriber("Ada Lovelace", news)], status=Delivery.Status.SENT)

    assert f"#{campaign.pk:<6} draft      December news" in run("list")
    assert run("list", "--status", "finished") == "No campaigns.\n"
    shown = run("show", str(campaign.pk))
    assert "Lists:    Product news" in shown and "Messages: 1 sent" in shown
    with pytest.raises(CommandError, match=r"^no campaign #424242$"):
        run("show", "424242")
