"""A campaign's states: one transition table, domain errors, scheduling, starting exactly once."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from tests.campaigns.lifecycle_helpers import (
    make_campaign,
    make_list,
    make_sender,
    make_template,
    person,
    queue,
    subscriber,
    use_outbox,
)
from tests.operators import make_operator
from tidings.audience.models import Segment
from tidings.audience.suppression import do_suppress
from tidings.campaigns import lifecycle
from tidings.campaigns.lifecycle import (
    TRANSITIONS,
    CampaignNotReady,
    InvalidTransition,
    do_cancel,
    do_clone,
    do_create_campaign,
    do_pause,
    do_resume,
    do_schedule,
    do_start,
    do_update_campaign,
    start_due_campaigns,
    transition,
)
from tidings.campaigns.models import Campaign, Delivery, Layout, OutboxMessage
from tidings.campaigns.queue import claim_batch
from tidings.campaigns.samples import do_test_send
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db

S = Campaign.Status
ALLOWED = {
    ("draft", "edit"): "draft",
    ("draft", "schedule"): "scheduled",
    ("scheduled", "unschedule"): "draft",
    ("scheduled", "start"): "sending",
    ("scheduled", "cancel"): "cancelled",
    ("sending", "pause"): "paused",
    ("sending", "cancel"): "cancelled",
    ("sending", "finish"): "finished",
    ("sending", "retry"): "sending",
    ("paused", "resume"): "sending",
    ("paused", "cancel"): "cancelled",
    ("paused", "retry"): "paused",
    ("finished", "retry"): "sending",
}


@pytest.fixture
def news():
    return make_list("Product news", "product news")


# --- the table ----------------------------------------------------------------------------------
def test_the_transition_table_is_exactly_the_documented_one():
    assert dict(TRANSITIONS) == ALLOWED


@pytest.mark.parametrize("status", S.values)
@pytest.mark.parametrize("action", lifecycle.ACTIONS)
def test_every_state_and_action_is_either_allowed_or_a_domain_error(status, action):
    if (status, action) in ALLOWED:
        assert transition(status, action) == ALLOWED[(status, action)]
    else:
        with pytest.raises(InvalidTransition) as error:
            transition(status, action)
        assert error.value.status == status
        assert error.value.message.startswith(f"a {status} campaign cannot be ")


def test_the_error_says_what_cannot_happen_in_plain_words():
    with pytest.raises(InvalidTransition) as error:
        transition("finished", "pause")
    assert str(error.value) == "a finished campaign cannot be paused"
    with pytest.raises(InvalidTransition) as error:
        transition("draft", "resume")
    assert str(error.value) == "a draft campaign cannot be resumed"


@pytest.mark.parametrize("status", ["draft", "scheduled", "paused", "cancelled", "finished"])
def test_pausing_is_refused_unless_sending(status, owner):
    campaign = make_campaign(status=status)
    with pytest.raises(InvalidTransition):
        do_pause(campaign, actor=owner)
    campaign.refresh_from_db()
    assert campaign.status == status
    assert not AuditEntry.objects.filter(action="campaign.paused").exists()


def test_a_transition_made_from_a_stale_copy_loses_to_the_one_that_got_there_first(owner):
    campaign = make_campaign(status="sending")
    stale = Campaign.objects.get(pk=campaign.pk)
    do_cancel(campaign, actor=owner)
    with pytest.raises(InvalidTransition, match="a cancelled campaign cannot be paused"):
        do_pause(stale, actor=owner)


# --- creating, editing, cloning -----------------------------------------------------------------
def test_a_campaign_is_created_from_a_template_as_a_draft(news, owner):
    template = make_template()
    sender = make_sender()
    campaign = do_create_campaign(
        template, name="July", topic="product news", sender=sender, lists=[news], actor=owner
    )
    assert campaign.status == "draft"
    assert (campaign.subject, campaign.body, campaign.layout) == (
        template.subject,
        template.body,
        template.layout,
    )
    assert list(campaign.lists.all()) == [news]
    entry = AuditEntry.objects.get(action="campaign.created")
    assert entry.object_id == str(campaign.pk) and entry.details == {"template": template.pk}


def test_a_list_of_another_topic_is_refused_at_the_lists_field(news, owner):
    events = make_list("Events", "events and webinars")
    with pytest.raises(CampaignNotReady) as error:
        do_create_campaign(
            make_template(), name="July", topic="product news", lists=[events], actor=owner
        )
    assert [p.field for p in error.value.problems] == ["lists"]
    assert "did not agree to emails about 'product news'" in error.value.message


def test_only_drafts_can_be_edited(news, owner):
    campaign = make_campaign(news)
    assert do_update_campaign(campaign, {"subject": "New subject"}, actor=owner) == ["subject"]
    assert Campaign.objects.get(pk=campaign.pk).subject == "New subject"
    Campaign.objects.filter(pk=campaign.pk).update(status="scheduled")
    with pytest.raises(InvalidTransition, match="a scheduled campaign cannot be edited"):
        do_update_campaign(campaign, {"subject": "Too late"}, actor=owner)
    assert Campaign.objects.get(pk=campaign.pk).subject == "New subject"


def test_a_clone_is_a_new_draft_with_the_same_content_and_audience(news, owner):
    segment = Segment.objects.create(name="All", query='email ~ "@"')
    original = make_campaign(
        news,
        status="finished",
        segments=[segment],
        preheader="Read on",
        archive=True,
        started_at=timezone.now(),
        finished_at=timezone.now(),
    )
    copy = do_clone(original, actor=owner)
    assert copy.pk != original.pk
    assert copy.status == "draft"
    assert copy.name == f"Copy of {original.name}"
    assert (copy.subject, copy.preheader, copy.body, copy.topic) == (
        original.subject,
        original.preheader,
        original.body,
        original.topic,
    )
    assert list(copy.lists.all()) == [news] and list(copy.segments.all()) == [segment]
    assert copy.started_at is None and copy.finished_at is None and copy.scheduled_at is None
    assert AuditEntry.objects.get(action="campaign.cloned").details == {"source": original.pk}


# --- scheduling -----------------------------------------------------------------------------------
def ready_campaign(*lists, **fields):
    return make_campaign(*lists, sender=make_sender(), with_template=True, **fields)


def test_scheduling_lists_every_problem_with_its_field(owner):
    bare = Layout.objects.create(name="Bare", html="<html><body>{{ content }}</body></html>")
    campaign = make_campaign(
        sender=make_sender(verified=False), subject="", layout=bare, body="Hi {{ contact.nme }}"
    )
    with pytest.raises(CampaignNotReady) as error:
        do_schedule(campaign, None, actor=owner)
    fields = {p.field for p in error.value.problems}
    assert {"sender", "subject", "lists", "layout", "body"} <= fields
    assert "unsubscribe_url" in error.value.message
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_time_in_the_past_is_refused(news, owner):
    campaign = ready_campaign(news)
    with pytest.raises(CampaignNotReady) as error:
        do_schedule(campaign, timezone.now() - timedelta(minutes=1), actor=owner, confirmed=True)
    assert [p.field for p in error.value.problems] == ["when"]


def test_nothing_is_scheduled_without_the_confirmation(news, owner):
    campaign = ready_campaign(news)
    with pytest.raises(CampaignNotReady) as error:
        do_schedule(campaign, None, actor=owner)
    assert [p.field for p in error.value.problems] == ["confirm"]
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_with_four_eyes_the_author_cannot_send_what_they_wrote(news, owner, settings):
    from tests.campaigns.lifecycle_helpers import make_editor

    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True
    campaign = ready_campaign(news)
    Campaign.objects.filter(pk=campaign.pk).update(created_by=owner)
    campaign.refresh_from_db()
    with pytest.raises(CampaignNotReady, match="second pair of eyes"):
        do_schedule(campaign, None, actor=owner, confirmed=True)
    do_schedule(campaign, None, actor=make_editor(), confirmed=True)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


def test_a_ready_campaign_is_scheduled_for_a_future_time(news, owner):
    campaign = ready_campaign(news)
    when = timezone.now() + timedelta(days=1)
    do_schedule(campaign, when, actor=owner, confirmed=True)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.scheduled_at) == ("scheduled", when)
    assert AuditEntry.objects.filter(action="campaign.scheduled", object_id=campaign.pk).exists()


def test_send_now_enqueues_the_start_once_the_schedule_is_committed(
    news, owner, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    campaign = ready_campaign(news)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        do_schedule(campaign, None, actor=owner, confirmed=True)
    assert len(callbacks) == 1
    assert DBTaskResult.objects.filter(task_path__endswith="start_campaign").count() == 1


# --- starting -----------------------------------------------------------------------------------
def test_a_due_campaign_starts_and_queues_one_row_per_recipient(news, owner):
    ada = subscriber("Ada Lovelace", news)
    grace = subscriber("Grace Hopper", news)
    banned = subscriber("Banned Person", news)
    do_suppress(banned.email, "complaint")
    person("Not Subscribed")
    campaign = ready_campaign(news, status="scheduled", scheduled_at=timezone.now())
    assert start_due_campaigns() == [campaign.pk]
    campaign.refresh_from_db()
    assert campaign.status == "sending" and campaign.started_at is not None
    rows = dict(Delivery.objects.filter(campaign=campaign).values_list("contact_id", "status"))
    assert rows == {ada.pk: "queued", grace.pk: "queued", banned.pk: "skipped"}
    entry = AuditEntry.objects.get(action="campaign.started")
    assert entry.details == {"queued": 2, "skipped": 1}


def test_a_campaign_is_not_started_before_its_time(news):
    subscriber("Ada Lovelace", news)
    campaign = ready_campaign(
        news, status="scheduled", scheduled_at=timezone.now() + timedelta(minutes=5)
    )
    assert start_due_campaigns() == []
    assert start_due_campaigns(now=timezone.now() + timedelta(minutes=5)) == [campaign.pk]


def test_a_second_start_of_the_same_campaign_changes_nothing(news):
    subscriber("Ada Lovelace", news)
    campaign = ready_campaign(news, status="scheduled", scheduled_at=timezone.now())
    # Worker B read the due list before worker A started the campaign ...
    due_for_b = list(
        Campaign.objects.filter(status="scheduled", scheduled_at__lte=timezone.now()).values_list(
            "pk", flat=True
        )
    )
    assert start_due_campaigns() == [campaign.pk]  # worker A
    # ... so B's claim of it finds it no longer scheduled.
    with pytest.raises(InvalidTransition, match="a sending campaign cannot be started"):
        do_start(due_for_b[0])
    assert start_due_campaigns() == []
    assert Delivery.objects.filter(campaign=campaign).count() == 1
    assert AuditEntry.objects.filter(action="campaign.started").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_start_a_due_campaign_exactly_once(settings):
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL's row locks (SQLite runs one writer anyway)")
    news = make_list("Product news", "product news")
    for i in range(50):
        subscriber(f"Person {i}", news)
    campaign = ready_campaign(news, status="scheduled", scheduled_at=timezone.now())
    barrier = threading.Barrier(2)
    results: list[list[int]] = []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(start_due_campaigns())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[], [campaign.pk]]
    assert Delivery.objects.filter(campaign=campaign).count() == 50
    assert AuditEntry.objects.filter(action="campaign.started").count() == 1


def test_a_campaign_whose_segment_broke_goes_back_to_draft_with_the_reason(news):
    segment = Segment.objects.create(name="Old", query='list:"Product news"')
    campaign = ready_campaign(segments=[segment], status="scheduled", scheduled_at=timezone.now())
    news.name = "Renamed"
    news.save()
    assert start_due_campaigns() == []
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert "segment" in campaign.paused_reason
    assert not Delivery.objects.filter(campaign=campaign).exists()


@pytest.mark.parametrize("gone", ["segment deleted", "list closed"])
def test_a_campaign_whose_whole_audience_went_away_goes_back_to_draft_not_finished(
    news, owner, gone
):
    """Its only segment deleted or its only list closed after it was scheduled: it used to
    start, queue nobody and show "finished" with 0 sent, as if it had gone out."""
    from tidings.audience.operator import do_close_list, do_delete_segment

    subscriber("Ada Lovelace", news)
    segment = Segment.objects.create(name="Everyone", query='email ~ "@"')
    if gone == "segment deleted":
        campaign = ready_campaign(segments=[segment])
    else:
        campaign = ready_campaign(news)
    do_schedule(campaign, timezone.now() + timedelta(minutes=5), actor=owner, confirmed=True)
    if gone == "segment deleted":
        do_delete_segment(segment, actor=owner)
    else:
        do_close_list(news, actor=owner)
    assert start_due_campaigns(now=timezone.now() + timedelta(minutes=6)) == []
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert "no open list or segment" in campaign.paused_reason
    assert not Delivery.objects.filter(campaign=campaign).exists()


def test_the_author_and_whoever_scheduled_it_are_told_when_it_could_not_start(
    news, owner, mailoutbox, django_capture_on_commit_callbacks
):
    """Its segment broke after it was scheduled: back to draft, and the two people counting on
    it going out learn why and that it needs scheduling again (not only from its page)."""
    from django_tasks_db.models import DBTaskResult

    from tidings.campaigns.sent_back import notify_sent_back_task

    author = make_operator("author", "writer", password=None)
    segment = Segment.objects.create(name="Old", query='list:"Product news"')
    campaign = ready_campaign(segments=[segment], created_by=author)
    do_schedule(campaign, timezone.now() + timedelta(minutes=5), actor=owner, confirmed=True)
    news.name = "Renamed"
    news.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert start_due_campaigns(now=timezone.now() + timedelta(minutes=6)) == []
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    (row,) = DBTaskResult.objects.filter(task_path__endswith="notify_sent_back_task")
    assert notify_sent_back_task.call(*row.args_kwargs["args"]) == 2
    [message] = mailoutbox
    assert message.to == sorted([author.email, owner.email])
    assert message.subject == f"tidings: the campaign “{campaign.name}” is back to draft"
    assert "Why: a segment no longer works" in message.body
    assert "Put it right on its page, then schedule it again." in message.body


# --- while sending ------------------------------------------------------------------------------
def test_pausing_keeps_the_queue_and_resuming_continues_it(news, owner):
    ada, grace = subscriber("Ada Lovelace", news), subscriber("Grace Hopper", news)
    campaign = make_campaign(news, status="sending")
    queue(campaign, [ada, grace])
    do_pause(campaign, actor=owner)
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert Delivery.objects.filter(campaign=campaign, status="queued").count() == 2
    do_resume(campaign, actor=owner)
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"


def test_a_paused_campaign_gives_the_workers_nothing_to_claim(news, owner):
    ada, grace = subscriber("Ada Lovelace", news), subscriber("Grace Hopper", news)
    campaign = make_campaign(news, status="sending")
    queue(campaign, [ada, grace])
    do_pause(campaign, actor=owner)
    assert claim_batch("test-worker", 10) == []
    do_resume(campaign, actor=owner)
    assert len(claim_batch("test-worker", 10)) == 2


def test_cancelling_skips_every_queued_row_at_once(news, owner):
    ada, grace, alan = (subscriber(n, news) for n in ("Ada L", "Grace H", "Alan T"))
    campaign = make_campaign(news, status="sending")
    queue(campaign, [ada, grace])
    queue(campaign, [alan], status="sent")
    assert do_cancel(campaign, actor=owner) == 2
    campaign.refresh_from_db()
    assert campaign.status == "cancelled" and campaign.finished_at is not None
    statuses = dict(Delivery.objects.values_list("contact_id", "status"))
    assert statuses == {ada.pk: "skipped", grace.pk: "skipped", alan.pk: "sent"}
    assert AuditEntry.objects.get(action="campaign.cancelled").details == {"dropped": 2}


# --- test messages ------------------------------------------------------------------------------
def test_a_test_send_reaches_the_outbox_with_a_marked_subject(
    news, owner, settings, django_capture_on_commit_callbacks
):
    use_outbox(settings)
    campaign = ready_campaign(news)
    with django_capture_on_commit_callbacks(execute=True):
        result = do_test_send(
            campaign, ["me@example.co.uk", "Colleague@Example.co.uk "], actor=owner
        )
    assert (result.sent, result.errors) == (2, [])
    messages = list(OutboxMessage.objects.order_by("pk"))
    assert [m.to for m in messages] == ["me@example.co.uk", "Colleague@example.co.uk"]
    assert all(m.subject.startswith("[Test] ") for m in messages)
    assert "We shipped the thing" in messages[0].body("plain")
    entry = AuditEntry.objects.get(action="campaign.test_sent")
    assert entry.details == {"recipients": 2, "as_contact": None}  # counts, never addresses


def test_a_test_send_is_refused_for_bad_or_too_many_addresses(news, owner):
    campaign = ready_campaign(news)
    with pytest.raises(CampaignNotReady, match="not an email address"):
        do_test_send(campaign, ["not-an-address"], actor=owner)
    with pytest.raises(CampaignNotReady, match="at most 5"):
        do_test_send(campaign, [f"p{i}@example.com" for i in range(6)], actor=owner)
    assert not OutboxMessage.objects.exists()


def test_scheduling_in_the_past_is_judged_by_the_clock(news, owner):
    campaign = ready_campaign(news)
    with time_machine.travel(datetime(2026, 7, 1, 9, 0, tzinfo=UTC), tick=False):
        with pytest.raises(CampaignNotReady):
            do_schedule(
                campaign, datetime(2026, 7, 1, 8, 59, tzinfo=UTC), actor=owner, confirmed=True
            )
        do_schedule(campaign, datetime(2026, 7, 1, 9, 1, tzinfo=UTC), actor=owner, confirmed=True)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"
