"""Four-eyes sending: what the second operator confirmed is what is sent.

After a campaign is confirmed, a change to what it reads when it goes out (its layout, the
template it takes its body from, the segments and lists of its audience) voids the confirmation;
the worker refuses to start or send a campaign whose content differs from what was confirmed.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.campaigns.delivery_helpers import SmtpSink, transports_for
from tests.campaigns.lifecycle_helpers import (
    make_campaign,
    make_editor,
    make_list,
    make_sender,
    subscriber,
)
from tests.operators import make_operator, sign_in
from tidings.audience.models import Segment
from tidings.campaigns import lifecycle
from tidings.campaigns.engine import Engine
from tidings.campaigns.fingerprint import changed_since_confirmed
from tidings.campaigns.lifecycle import CampaignNotReady, do_resume, do_schedule
from tidings.campaigns.models import Campaign, Delivery, Layout, Template
from tidings.campaigns.queue import populate_deliveries
from tidings.campaigns.targeting import audience_for
from tidings.campaigns.template_actions import do_save_layout, do_save_template
from tidings.campaigns.template_forms import LayoutForm, TemplateForm
from tidings.lib.four_eyes import VOIDED_END
from tidings.lib.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def four_eyes(settings):
    settings.TIDINGS_SEND_NEEDS_SECOND_OPERATOR = True


@pytest.fixture
def news():
    return make_list("Product news", "product news")


@pytest.fixture
def author():
    return make_editor("author")


@pytest.fixture
def reviewer():
    return make_operator("reviewer", "owner", password=None)


def confirmed(news, author, reviewer, *, own_layout: bool = True, **fields) -> Campaign:
    """A campaign written by ``author`` and confirmed by ``reviewer`` for tomorrow; without
    ``own_layout`` it takes its template's layout."""
    campaign = make_campaign(news, sender=make_sender(), with_template=True, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(created_by=author, last_edited_by=author)
    if not own_layout:
        Campaign.objects.filter(pk=campaign.pk).update(layout=None)
    campaign.refresh_from_db()
    do_schedule(
        campaign, timezone.now() + timezone.timedelta(days=1), actor=reviewer, confirmed=True
    )
    return Campaign.objects.get(pk=campaign.pk)


def save_layout(layout: Layout, html: str, actor) -> None:
    form = LayoutForm({"name": layout.name, "html": html, "text": layout.text}, instance=layout)
    assert form.is_valid(), form.errors
    do_save_layout(form, actor=actor)


def changed_html(layout: Layout) -> str:
    return layout.html.replace("{{ content }}", "<p>Buy now, unreviewed</p>{{ content }}", 1)


# --- voided at once, by the action that changes it ------------------------------------------------
def test_a_layout_saved_after_confirmation_sends_the_campaign_back_to_be_confirmed(
    four_eyes, news, author, reviewer
):
    campaign = confirmed(news, author, reviewer)
    assert campaign.confirmed_content and campaign.confirmed_audience
    save_layout(campaign.layout, changed_html(campaign.layout), author)
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.scheduled_at is None
    assert "layout" in campaign.paused_reason and "confirm it again" in campaign.paused_reason
    assert campaign.last_edited_by == author
    entry = AuditEntry.objects.get(action="campaign.confirmation_voided")
    assert entry.object_id == str(campaign.pk) and entry.actor == author
    assert entry.details["was"] == "scheduled"
    # The author who changed it cannot confirm it; another operator can, having seen it.
    with pytest.raises(CampaignNotReady, match="second pair of eyes"):
        do_schedule(campaign, None, actor=author, confirmed=True)
    do_schedule(campaign, None, actor=reviewer, confirmed=True)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


def test_whoever_changes_the_layout_becomes_its_editor_and_cannot_confirm_it(
    four_eyes, news, author, reviewer
):
    campaign = confirmed(news, author, reviewer)
    save_layout(campaign.layout, changed_html(campaign.layout), reviewer)
    campaign.refresh_from_db()
    assert campaign.status == "draft" and campaign.last_edited_by == reviewer
    with pytest.raises(CampaignNotReady, match="second pair of eyes"):
        do_schedule(campaign, None, actor=reviewer, confirmed=True)


def test_a_template_the_campaign_takes_its_layout_from_voids_it_when_saved(
    four_eyes, news, author, reviewer
):
    campaign = confirmed(news, author, reviewer, own_layout=False)
    template = campaign.template
    other = Layout.objects.create(
        name="Loud", html=changed_html(template.layout), text=template.layout.text
    )
    form = TemplateForm(
        {
            "name": template.name,
            "layout": other.pk,
            "format": "markdown",
            "subject": template.subject,
            "body": template.body,
            "text_body": "",
        },
        instance=template,
    )
    assert form.is_valid(), form.errors
    do_save_template(form, actor=author)
    campaign.refresh_from_db()
    assert campaign.status == "draft" and "template" in campaign.paused_reason


def test_a_template_the_campaign_has_its_own_copy_of_changes_nothing(
    four_eyes, news, author, reviewer
):
    campaign = confirmed(news, author, reviewer)
    Template.objects.filter(pk=campaign.template_id).update(body="# Something else")
    template = Template.objects.get(pk=campaign.template_id)
    form = TemplateForm(
        {
            "name": template.name,
            "layout": template.layout_id,
            "format": "markdown",
            "subject": template.subject,
            "body": "# Changed again",
            "text_body": "",
        },
        instance=template,
    )
    assert form.is_valid(), form.errors
    do_save_template(form, actor=author)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"
    assert not AuditEntry.objects.filter(action="campaign.confirmation_voided").exists()


def test_a_segment_of_its_audience_saved_after_confirmation_voids_it(
    four_eyes, news, author, reviewer, client
):
    segment = Segment.objects.create(name="Readers", query='company = "Pro Ltd"')
    campaign = confirmed(news, author, reviewer, segments=[segment])
    sign_in(client, reviewer)
    response = client.post(
        reverse("audience:segment-edit", args=[segment.pk]),
        {"name": "Readers", "query": 'company = "Other Ltd"', "description": "", "save": "1"},
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "draft" and "segment “Readers”" in campaign.paused_reason
    assert campaign.last_edited_by == reviewer


def test_a_list_of_its_audience_given_another_topic_voids_it(four_eyes, news, author, reviewer):
    from tidings.audience.operator import do_save_list
    from tidings.audience.operator_forms import MailingListForm

    campaign = confirmed(news, author, reviewer)
    form = MailingListForm(
        {"name": news.name, "topic": "training", "description": "", "is_public": ""},
        instance=news,
    )
    assert form.is_valid(), form.errors
    do_save_list(form, actor=author)
    campaign.refresh_from_db()
    assert campaign.status == "draft" and "its list “Product news”" in campaign.paused_reason


def test_renaming_a_list_changes_nothing_it_sends(four_eyes, news, author, reviewer):
    from tidings.audience.operator import do_save_list
    from tidings.audience.operator_forms import MailingListForm

    campaign = confirmed(news, author, reviewer)
    form = MailingListForm(
        {"name": "Product news (monthly)", "topic": news.topic, "description": "", "is_public": ""},
        instance=news,
    )
    assert form.is_valid(), form.errors
    do_save_list(form, actor=author)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


def test_a_sending_campaign_pauses_and_resuming_it_needs_another_operator(
    four_eyes, news, author, reviewer
):
    subscriber("Ada Lovelace", news)
    campaign = confirmed(news, author, reviewer)
    lifecycle.start_due_campaigns(now=timezone.now() + timezone.timedelta(days=2))
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    save_layout(campaign.layout, changed_html(campaign.layout), author)
    campaign.refresh_from_db()
    assert campaign.status == "paused" and "confirm it again" in campaign.paused_reason
    with pytest.raises(CampaignNotReady, match="another operator"):
        do_resume(campaign, actor=author)
    do_resume(campaign, actor=reviewer)  # the reviewer looked at the change: confirmed again
    campaign.refresh_from_db()
    assert campaign.status == "sending" and campaign.paused_reason == ""
    resumed = AuditEntry.objects.get(action="campaign.resumed")
    assert resumed.details["reconfirmed"] is True
    assert not changed_since_confirmed(campaign, audience=False)


def test_a_sending_campaign_ignores_a_change_to_its_segments(four_eyes, news, author, reviewer):
    """Its queue was made when it started: who it goes to no longer changes."""
    subscriber("Ada Lovelace", news)
    segment = Segment.objects.create(name="Readers", query='company = "Pro Ltd"')
    campaign = confirmed(news, author, reviewer, segments=[segment])
    lifecycle.start_due_campaigns(now=timezone.now() + timezone.timedelta(days=2))
    from tidings.audience.operator import do_save_segment
    from tidings.audience.segment_views import SegmentForm

    form = SegmentForm({"name": "Readers", "query": 'company = "Other Ltd"'}, instance=segment)
    assert form.is_valid(), form.errors
    do_save_segment(form, actor=author)
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"


def test_without_four_eyes_saving_a_layout_leaves_scheduled_campaigns_alone(news, author, reviewer):
    campaign = confirmed(news, author, reviewer)
    save_layout(campaign.layout, changed_html(campaign.layout), author)
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


# --- the safety net: the worker ------------------------------------------------------------------
def test_the_worker_does_not_start_a_campaign_changed_behind_the_actions_back(
    four_eyes, news, author, reviewer
):
    subscriber("Ada Lovelace", news)
    campaign = confirmed(news, author, reviewer)
    # A change that no action saw (the admin, a shell, a race with the confirmation).
    Layout.objects.filter(pk=campaign.layout_id).update(html=changed_html(campaign.layout))
    assert lifecycle.start_due_campaigns(now=timezone.now() + timezone.timedelta(days=2)) == []
    campaign.refresh_from_db()
    assert campaign.status == "draft" and "changed after it was confirmed" in campaign.paused_reason
    assert not Delivery.objects.filter(campaign=campaign).exists()
    assert AuditEntry.objects.filter(
        action="campaign.confirmation_voided", object_id=str(campaign.pk)
    ).exists()


def test_the_delivery_engine_pauses_a_campaign_whose_content_changed_unseen(
    four_eyes, news, author, reviewer, settings
):
    subscriber("Ada Lovelace", news)
    campaign = confirmed(news, author, reviewer)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=timezone.now())
    populate_deliveries(campaign, audience_for(campaign))
    Layout.objects.filter(pk=campaign.layout_id).update(html=changed_html(campaign.layout))
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        Engine().run(until_idle=True, max_seconds=10)
    campaign.refresh_from_db()
    assert sink.received == []
    assert (
        campaign.status == "paused" and "changed after it was confirmed" in campaign.paused_reason
    )
    assert Delivery.objects.filter(campaign=campaign, status="queued").count() == 1


def test_the_delivery_engine_sends_what_was_confirmed(four_eyes, news, author, reviewer, settings):
    subscriber("Ada Lovelace", news)
    campaign = confirmed(news, author, reviewer)
    Campaign.objects.filter(pk=campaign.pk).update(status="sending", started_at=timezone.now())
    populate_deliveries(campaign, audience_for(campaign))
    with SmtpSink() as sink:
        settings.TIDINGS_TRANSPORTS = transports_for(sink)
        Engine().run(until_idle=True, max_seconds=10)
    assert len(sink.received) == 1
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


# --- the page says why ----------------------------------------------------------------------------
def test_the_campaign_page_says_why_it_went_back_to_draft(
    four_eyes, news, author, reviewer, client
):
    campaign = confirmed(news, author, reviewer)
    sign_in(client, reviewer)
    response = client.post(
        reverse("templates_ui:layout-edit", args=[campaign.layout_id]),
        {
            "name": campaign.layout.name,
            "html": changed_html(campaign.layout),
            "text": campaign.layout.text,
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("campaigns:detail", args=[campaign.pk]))
    text = page.content.decode()
    assert "Not sent:" in text and "changed after it was confirmed" in text


def paused_after_change(news, author, reviewer) -> Campaign:
    subscriber("Ada Lovelace", news)
    campaign = confirmed(news, author, reviewer)
    lifecycle.start_due_campaigns(now=timezone.now() + timezone.timedelta(days=2))
    save_layout(campaign.layout, changed_html(campaign.layout), author)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    return campaign


def test_the_resume_button_says_why_the_changer_cannot_resume(
    four_eyes, news, author, reviewer, client
):
    campaign = paused_after_change(news, author, reviewer)
    sign_in(client, author)
    response = client.post(reverse("campaigns:resume", args=[campaign.pk]), follow=True)
    assert response.status_code == 200
    assert "Not done: another operator with the send permission must confirm it" in response.text
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"


def test_the_api_answers_409_when_the_changer_resumes(four_eyes, news, author, reviewer):
    from tests.api.helpers import Api
    from tidings.api.actions import do_create_api_token

    campaign = paused_after_change(news, author, reviewer)
    _, text = do_create_api_token(name="t", operator=author, scopes=["send"], actor=author)
    response = Api(text).post(f"/campaigns/{campaign.pk}/resume")
    assert response.status_code == 409
    assert response.json()["detail"].startswith("Another operator with the send permission")
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    _, text = do_create_api_token(name="r", operator=reviewer, scopes=["send"], actor=reviewer)
    assert Api(text).post(f"/campaigns/{campaign.pk}/resume").status_code == 200


def test_a_layout_saved_voids_the_campaign_and_the_running_journey_that_read_it(
    four_eyes, news, author, reviewer
):
    # One save, both kinds of mail: the campaigns' own voiding and, through
    # signals.mail_content_changed, the journeys' (journeys/four_eyes.py).
    from tests.journeys.helpers import spec
    from tidings.journeys import four_eyes as journey_four_eyes
    from tidings.journeys.actions import do_create_journey
    from tidings.journeys.models import Journey

    campaign = confirmed(news, author, reviewer)
    layout = campaign.layout
    Template.objects.create(name="Welcome", layout=layout, subject="Hi", body="Hello")
    journey = do_create_journey(spec(), actor=author)
    journey_four_eyes.do_confirm(
        journey, actor=reviewer, seen=journey_four_eyes.fingerprint(journey)
    )
    assert Journey.objects.get(pk=journey.pk).status == "active"
    save_layout(layout, changed_html(layout), author)
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    journey.refresh_from_db()
    assert journey.status == "paused" and journey.last_edited_by == author
    assert journey.paused_reason.startswith(f"its layout “{layout.name}” changed")
    assert AuditEntry.objects.filter(
        action="journey.confirmation_voided", object_id=str(journey.pk)
    ).exists()


# --- asking another operator ---------------------------------------------------------------------
def test_the_author_asks_and_the_operators_who_may_send_it_are_emailed(
    client, four_eyes, news, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    from django_tasks_db.models import DBTaskResult

    from tidings.campaigns import second_operator

    make_operator("writer", "writer", password=None)  # may not send: not told
    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    Campaign.objects.filter(pk=campaign.pk).update(created_by=author, last_edited_by=author)
    url = reverse("campaigns:detail", args=[campaign.pk])
    sign_in(client, author)
    page = client.get(url).content.decode()
    assert "You may not send this campaign yourself" in page
    ask = reverse("campaigns:request-confirmation", args=[campaign.pk])
    assert ask in page
    with django_capture_on_commit_callbacks(execute=True):
        client.post(ask)
    task = DBTaskResult.objects.get(task_path__endswith="notify_confirmers_task")
    assert task.args_kwargs["args"] == [campaign.pk, author.pk]
    assert second_operator.notify_confirmers_task.call(campaign.pk, author.pk) == 1
    [mail] = mailoutbox
    assert mail.to == [reviewer.email]
    assert mail.subject == f"tidings: please send the campaign “{campaign.name}”"
    assert "author asks another operator to send the campaign" in mail.body
    assert "sending needs a second operator here, and they wrote or last changed it" in mail.body
    assert f"/campaigns/{campaign.pk}/" in mail.body
    assert "author asked for it on" in client.get(url).content.decode()
    # The reviewer, who may send it, is offered no such button.
    sign_in(client, reviewer)
    assert ask not in client.get(url).content.decode()


def test_a_writer_asks_for_their_campaign_to_be_sent_without_four_eyes(
    client, news, author, mailoutbox
):
    from tidings.campaigns import second_operator

    writer = make_operator("writer", "writer", password=None)
    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    Campaign.objects.filter(pk=campaign.pk).update(created_by=writer, last_edited_by=writer)
    sign_in(client, writer)
    client.post(reverse("campaigns:request-confirmation", args=[campaign.pk]))
    assert second_operator.notify_confirmers_task.call(campaign.pk, writer.pk) == 1
    assert mailoutbox[0].to == [author.email]  # the editor may send it
    assert "(their role does not send campaigns)" in mailoutbox[0].body


def test_someone_who_may_send_it_cannot_ask(four_eyes, news, author, reviewer):
    from tidings.campaigns import second_operator

    campaign = make_campaign(news, sender=make_sender(), with_template=True)
    Campaign.objects.filter(pk=campaign.pk).update(created_by=author, last_edited_by=author)
    campaign.refresh_from_db()
    assert not second_operator.may_ask(campaign, reviewer)
    with pytest.raises(CampaignNotReady, match="you may send it yourself"):
        second_operator.do_request_confirmation(campaign, actor=reviewer)


def test_the_dashboard_lists_a_campaign_waiting_for_a_second_operator(
    client, four_eyes, news, author, reviewer
):
    """A request to send went by email only: nothing on the dashboard said a campaign waited,
    so a missed email left it waiting.  Those who may send it see it listed, with a link; its
    author (who may not) does not, and neither does anyone once it changed since the request."""
    from tidings.campaigns import second_operator

    campaign = make_campaign(news, sender=make_sender(), with_template=True, name="Spring sale")
    Campaign.objects.filter(pk=campaign.pk).update(created_by=author, last_edited_by=author)
    campaign.refresh_from_db()
    second_operator.do_request_confirmation(campaign, actor=author)
    link = reverse("campaigns:detail", args=[campaign.pk])

    sign_in(client, reviewer)
    page = client.get(reverse("web:dashboard")).content.decode()
    assert "Waiting for a second operator (1)" in page
    assert f'<a href="{link}">Spring sale</a>' in page

    sign_in(client, author)
    assert (
        "Waiting for a second operator" not in client.get(reverse("web:dashboard")).content.decode()
    )

    campaign.save()  # changed since the request: whoever changed it asks again
    assert second_operator.waiting(reviewer) == []


def test_a_long_name_in_what_changed_keeps_the_reason_saying_what_to_do(
    four_eyes, news, author, reviewer
):
    """The reason fits its 300 characters by shortening the name, not by cutting off "another
    operator must confirm it again"."""
    from tidings.campaigns.reconfirm import void_changed_confirmations

    campaign = confirmed(news, author, reviewer)
    Layout.objects.filter(pk=campaign.layout_id).update(html=changed_html(campaign.layout))
    void_changed_confirmations("its layout “" + "Long " * 60 + "”", actor=author)
    campaign.refresh_from_db()
    assert campaign.status == "draft"
    assert len(campaign.paused_reason) <= 300
    assert campaign.paused_reason.startswith("its layout “Long Long")
    assert campaign.paused_reason.endswith("another operator must confirm it again")


# --- who is told ----------------------------------------------------------------------------------
def run_sent_back_task() -> int:
    """Run the one notification the change enqueued, as the worker would."""
    from django_tasks_db.models import DBTaskResult

    from tidings.campaigns.sent_back import notify_sent_back_task

    (row,) = DBTaskResult.objects.filter(task_path__endswith="notify_sent_back_task")
    return notify_sent_back_task.call(*row.args_kwargs["args"])


def test_the_author_and_the_confirmer_are_told_in_words_when_a_change_sends_it_back(
    four_eyes, news, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    """A third operator gives its list another topic: the campaign is back to draft, and the
    two people counting on it going out are emailed what changed and what it needs now."""
    from tidings.audience.operator import do_save_list
    from tidings.audience.operator_forms import MailingListForm

    carol = make_operator("carol", "owner", password=None)
    campaign = confirmed(news, author, reviewer)
    form = MailingListForm(
        {"name": news.name, "topic": "training", "description": "", "is_public": ""},
        instance=news,
    )
    assert form.is_valid(), form.errors
    with django_capture_on_commit_callbacks(execute=True):
        do_save_list(form, actor=carol)
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"

    assert run_sent_back_task() == 2
    [message] = mailoutbox
    assert message.to == sorted([author.email, reviewer.email])
    assert message.subject == f"tidings: the campaign “{campaign.name}” is back to draft"
    body = message.body
    assert "is back to draft and will not go out (it was scheduled for " in body
    assert "its list “Product news” changed after it was confirmed" in body
    assert "The change was made by carol." in body
    assert "needs confirming again: another operator with the send permission" in body
    assert f"/campaigns/{campaign.pk}/" in body


def test_a_sending_campaign_paused_by_a_change_tells_them_it_needs_resuming(
    four_eyes, news, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    subscriber("Ada Lovelace", news)
    campaign = confirmed(news, author, reviewer)
    lifecycle.start_due_campaigns(now=timezone.now() + timezone.timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        save_layout(campaign.layout, changed_html(campaign.layout), author)
    assert run_sent_back_task() == 2
    [message] = mailoutbox
    assert "paused while sending" in message.subject
    assert "layout" in message.body and "resumes it." in message.body
    assert "Ada" not in message.body  # nobody's personal data


def test_nobody_is_told_once_it_was_confirmed_again(
    four_eyes, news, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    campaign = confirmed(news, author, reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        save_layout(campaign.layout, changed_html(campaign.layout), author)
    do_schedule(Campaign.objects.get(pk=campaign.pk), None, actor=reviewer, confirmed=True)
    assert run_sent_back_task() == 0
    assert mailoutbox == []


def test_an_author_who_switched_these_mails_off_is_not_told(
    four_eyes, news, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    from tidings.crm.models import OperatorPreference

    OperatorPreference.objects.create(user=author, mail_sent_back=False)
    campaign = confirmed(news, author, reviewer)
    with django_capture_on_commit_callbacks(execute=True):
        save_layout(campaign.layout, changed_html(campaign.layout), reviewer)
    assert run_sent_back_task() == 1
    assert mailoutbox[0].to == [reviewer.email]


def test_a_paused_campaign_whose_confirmation_a_change_voids_tells_them_once(
    four_eyes, news, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    """Paused by hand, then its layout changes: it can no longer be resumed as it was, and its
    author and confirmer learn that now, not when they press Resume; not again at the next
    change while it stays paused."""
    subscriber("Ada Lovelace", news)
    campaign = confirmed(news, author, reviewer)
    lifecycle.start_due_campaigns(now=timezone.now() + timezone.timedelta(days=2))
    lifecycle.do_pause(Campaign.objects.get(pk=campaign.pk), actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        save_layout(campaign.layout, changed_html(campaign.layout), author)
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert run_sent_back_task() == 2
    [message] = mailoutbox
    assert message.to == sorted([author.email, reviewer.email])
    assert (
        message.subject == f"tidings: the paused campaign “{campaign.name}” needs confirming again"
    )
    assert "can no longer be resumed as it was" in message.body
    assert "another operator with the send permission" in message.body
    assert "resumes it." in message.body and "Ada" not in message.body

    layout = Layout.objects.get(pk=campaign.layout_id)
    with django_capture_on_commit_callbacks(execute=True):
        save_layout(layout, layout.html + "<!-- again -->", author)
    assert AuditEntry.objects.filter(action="campaign.confirmation_voided").count() == 2
    from django_tasks_db.models import DBTaskResult

    assert DBTaskResult.objects.filter(task_path__endswith="notify_sent_back_task").count() == 1


def test_a_paused_campaign_without_four_eyes_tells_nobody_when_its_layout_changes(
    news, author, reviewer, mailoutbox, django_capture_on_commit_callbacks
):
    campaign = confirmed(news, author, reviewer)
    lifecycle.start_due_campaigns(now=timezone.now() + timezone.timedelta(days=2))
    lifecycle.do_pause(Campaign.objects.get(pk=campaign.pk), actor=author)
    with django_capture_on_commit_callbacks(execute=True):
        save_layout(campaign.layout, changed_html(campaign.layout), author)
    assert mailoutbox == []


OLD_CUT = ("its layout “" + "Long " * 44 + "” " + VOIDED_END)[:300]  # as stored before 54b8b9a


def test_a_reason_stored_cut_short_before_the_fix_is_shown_whole(
    four_eyes, news, author, reviewer, client
):
    """The end of an old voided reason was cut off at 300 characters ("…must co"): the page
    puts back the rest of our fixed sentence (what changed is all still there)."""
    assert not OLD_CUT.endswith(VOIDED_END) and len(OLD_CUT) == 300
    campaign = confirmed(news, author, reviewer)
    Campaign.objects.filter(pk=campaign.pk).update(status="draft", paused_reason=OLD_CUT)
    sign_in(client, author)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert "Long ” changed after it was confirmed: another operator must confirm it again</p>" in (
        page.replace("&#x27;", "'")
    )


def test_a_reason_cut_before_what_to_do_is_marked_cut(four_eyes, news, author, reviewer, client):
    cut = "its layout “" + "Long " * 80  # cut inside the name: nothing says what it was
    campaign = confirmed(news, author, reviewer)
    Campaign.objects.filter(pk=campaign.pk).update(status="draft", paused_reason=cut[:300])
    sign_in(client, author)
    page = client.get(reverse("campaigns:detail", args=[campaign.pk])).content.decode()
    assert f"Not sent: {cut[:300].rstrip()}…</p>" in page
